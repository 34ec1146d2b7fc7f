package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Plot colours per setup.
var setupColors = map[Setup]color.RGBA{
	Direct:  {0x70, 0x70, 0x70, 0xff},
	Linkerd: {0x1f, 0x5f, 0xd0, 0xff},
	// the same blue, lighter: the same proxies with a policy
	LinkerdAuthz: {0x7a, 0xa6, 0xf0, 0xff},
	Nginx:        {0x10, 0x96, 0x40, 0xff},
}

const (
	panelW, panelH = 440, 300
	headerH        = 34
	// Plot area inside a panel.
	padLeft, padRight, padTop, padBottom = 64, 30, 28, 40
)

// WritePlot draws the latency distribution of every cell — latency
// (log scale) against quantile (on a "nines" axis: 0, 90, 99, 99.9, 99.99
// %) — one panel per protocol and rate, one line per setup.
func (r *Report) WritePlot(w io.Writer) error {
	rows, cols := len(r.Settings.Protocols), len(r.Settings.Rates)
	img := image.NewRGBA(image.Rect(0, 0, max(cols, 1)*panelW, headerH+max(rows, 1)*panelH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	// Legend.
	x := 12
	text(img, x, 20, "latency (ms, log) by quantile, all rounds pooled:", color.Black)
	x += 7*50 + 12
	for _, s := range r.Settings.Setups {
		c := setupColors[s]
		fillRect(img, image.Rect(x, 12, x+20, 16), c)
		text(img, x+26, 20, string(s), c)
		x += 26 + 7*len(s) + 20
	}
	for ri, proto := range r.Settings.Protocols {
		for ci, rate := range r.Settings.Rates {
			r.drawPanel(img, image.Pt(ci*panelW, headerH+ri*panelH), proto, rate)
		}
	}
	return png.Encode(w, img)
}

func (r *Report) drawPanel(img *image.RGBA, origin image.Point, proto Protocol, rate int) {
	area := image.Rect(origin.X+padLeft, origin.Y+padTop, origin.X+panelW-padRight, origin.Y+panelH-padBottom)
	text(img, origin.X+padLeft, origin.Y+18, fmt.Sprintf("%s at %d req/s", proto, rate), color.Black)
	// The y range covers every line.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range r.Settings.Setups {
		if c := r.cell(proto, rate, s); c != nil {
			for _, pt := range c.Curve {
				if pt.Ms > 0 {
					lo, hi = math.Min(lo, pt.Ms), math.Max(hi, pt.Ms)
				}
			}
		}
	}
	grid := color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	axis := color.RGBA{0x40, 0x40, 0x40, 0xff}
	const maxNines = 4.0
	xOf := func(q float64) int {
		n := math.Min(-math.Log10(math.Max(1-q, 1e-9)), maxNines)
		return area.Min.X + int(math.Round(n/maxNines*float64(area.Dx())))
	}
	for i, label := range []string{"p0", "p90", "p99", "p99.9", "p99.99"} {
		gx := area.Min.X + i*area.Dx()/int(maxNines)
		vline(img, gx, area.Min.Y, area.Max.Y, grid)
		text(img, gx-len(label)*7/2, area.Max.Y+16, label, axis)
	}
	text(img, area.Min.X+area.Dx()/2-28, area.Max.Y+32, "quantile", axis)
	if math.IsInf(lo, 0) {
		text(img, area.Min.X+10, area.Min.Y+20, "no data", axis)
		rectOutline(img, area, axis)
		return
	}
	// Log scale with a little room above and below.
	lmin, lmax := math.Log10(lo)-0.05, math.Log10(hi)+0.05
	yOf := func(v float64) int {
		f := (math.Log10(v) - lmin) / (lmax - lmin)
		return area.Max.Y - int(math.Round(f*float64(area.Dy())))
	}
	for _, t := range logTicks(lo, hi) {
		gy := yOf(t)
		hline(img, area.Min.X, area.Max.X, gy, grid)
		label := trimFloat(t)
		text(img, area.Min.X-8-7*len(label), gy+4, label, axis)
	}
	rectOutline(img, area, axis)
	for _, s := range r.Settings.Setups {
		c := r.cell(proto, rate, s)
		if c == nil {
			continue
		}
		col := setupColors[s]
		for i := 1; i < len(c.Curve); i++ {
			a, b := c.Curve[i-1], c.Curve[i]
			if a.Ms <= 0 || b.Ms <= 0 {
				continue
			}
			line(img, xOf(a.Q), yOf(a.Ms), xOf(b.Q), yOf(b.Ms), col)
		}
	}
}

// logTicks are 1-2-5 values between lo and hi, thinned to decades when
// there would be too many.
func logTicks(lo, hi float64) []float64 {
	var all, decades []float64
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v >= lo*0.9 && v <= hi*1.1 {
				all = append(all, v)
				if m == 1 {
					decades = append(decades, v)
				}
			}
		}
	}
	if len(all) > 8 && len(decades) >= 2 {
		return decades
	}
	return all
}

func trimFloat(v float64) string {
	if v >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.Color) {
	for y := y0; y <= y1; y++ {
		img.Set(x, y, c)
	}
}

func rectOutline(img *image.RGBA, r image.Rectangle, c color.Color) {
	hline(img, r.Min.X, r.Max.X, r.Min.Y, c)
	hline(img, r.Min.X, r.Max.X, r.Max.Y, c)
	vline(img, r.Min.X, r.Min.Y, r.Max.Y, c)
	vline(img, r.Max.X, r.Min.Y, r.Max.Y, c)
}

// line draws a two-pixel-wide line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		img.Set(x0+1, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}
