package images

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/linkerd-go/linkerd-go/tools/dev/internal/ociimage"
)

// envFakeGo makes the test binary act as a `go` command that writes a
// small file instead of building, so that packaging is tested for every
// component in milliseconds.
const envFakeGo = "IMAGES_TEST_FAKE_GO"

func TestMain(m *testing.M) {
	if os.Getenv(envFakeGo) == "1" {
		os.Exit(fakeGo(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeGo writes "<pkg> <GOOS>/<GOARCH> <ldflags>" to the -o file.
func fakeGo(args []string) int {
	var out, ldflags, pkg string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-o":
			i++
			out = args[i]
		case "-ldflags":
			i++
			ldflags = args[i]
		default:
			pkg = args[i]
		}
	}
	if out == "" {
		fmt.Fprintln(os.Stderr, "fake go: no -o")
		return 2
	}
	if strings.Contains(pkg, "fail") {
		fmt.Fprintln(os.Stderr, "fake go: cannot build", pkg)
		return 1
	}
	data := fmt.Sprintf("%s %s/%s %s", pkg, os.Getenv("GOOS"), os.Getenv("GOARCH"), ldflags)
	if err := os.WriteFile(out, []byte(data), 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func fakeOptions(t *testing.T) Options {
	t.Setenv(envFakeGo, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		OutDir:   t.TempDir(),
		Go:       exe,
		Revision: "0123456789abcdef0123456789abcdef01234567",
	}
}

// readImages extracts a layout tarball and returns its reference and its
// images by platform.
func readImages(t *testing.T, tarPath string) (string, v1.ImageIndex, map[string]v1.Image) {
	t.Helper()
	named, err := ociimage.ReadLayoutTarball(tarPath, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(named) != 1 {
		t.Fatalf("%s holds %d indexes", tarPath, len(named))
	}
	idx := named[0].Index
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	imgs := map[string]v1.Image{}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		imgs[d.Platform.String()] = img
	}
	return named[0].Ref, idx, imgs
}

type layerFile struct {
	name     string
	mode     int64
	uid, gid int
	data     []byte
}

func layerFiles(t *testing.T, img v1.Image) []layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("%d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var files []layerFile
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, layerFile{name: h.Name, mode: h.Mode, uid: h.Uid, gid: h.Gid, data: b})
	}
}

// TestEveryComponent checks the packaging of every component: name, user,
// entrypoint, labels, platforms and the layer's single file.
func TestEveryComponent(t *testing.T) {
	o := fakeOptions(t)
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != len(Components) {
		t.Fatalf("%d images, want %d", len(res.Images), len(Components))
	}
	wantUser := map[string]string{"identity": "65532:65532", "destination": "65532:65532", "injector": "65532:65532", "proxy": "2102:2102", "proxy-init": "65532:65532"}
	for i, img := range res.Images {
		c := Components[i]
		t.Run(c, func(t *testing.T) {
			if img.Component != c || img.Ref != "ghcr.io/linkerd-go/"+c+":dev" || img.File != c+".tar" {
				t.Errorf("image = %+v", img)
			}
			ref, idx, imgs := readImages(t, filepath.Join(o.OutDir, img.File))
			if ref != img.Ref {
				t.Errorf("layout names %q, want %q", ref, img.Ref)
			}
			if d, _ := idx.Digest(); d.String() != img.Digest {
				t.Errorf("index digest %s, summary says %s", d, img.Digest)
			}
			if got := slices.Sorted(maps.Keys(imgs)); !slices.Equal(got, []string{"linux/amd64", "linux/arm64"}) {
				t.Errorf("platforms %v", got)
			}
			for p, im := range imgs {
				cf, err := im.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cf.OS+"/"+cf.Architecture != p {
					t.Errorf("%s: config says %s/%s", p, cf.OS, cf.Architecture)
				}
				if cf.Config.User != wantUser[c] || strings.HasPrefix(cf.Config.User, "0") || cf.Config.User == "" {
					t.Errorf("%s: user %q, want %q", p, cf.Config.User, wantUser[c])
				}
				if !slices.Equal(cf.Config.Entrypoint, []string{"/" + c}) || len(cf.Config.Cmd) != 0 {
					t.Errorf("%s: entrypoint %q cmd %q", p, cf.Config.Entrypoint, cf.Config.Cmd)
				}
				wantLabels := map[string]string{
					"org.opencontainers.image.title":    "linkerd-go-" + c,
					"org.opencontainers.image.version":  "dev",
					"org.opencontainers.image.source":   DefaultSource,
					"org.opencontainers.image.revision": o.Revision,
				}
				for k, v := range wantLabels {
					if cf.Config.Labels[k] != v {
						t.Errorf("%s: label %s = %q, want %q", p, k, cf.Config.Labels[k], v)
					}
				}
				files := layerFiles(t, im)
				if len(files) != 1 || files[0].name != c || files[0].mode != 0o755 || files[0].uid != 0 || files[0].gid != 0 {
					t.Fatalf("%s: layer holds %+v, want only %s (0755, root-owned)", p, files, c)
				}
				want := fmt.Sprintf("./cmd/%s %s -s -w -X main.version=dev", c, p)
				if string(files[0].data) != want {
					t.Errorf("%s: binary built as %q, want %q", p, files[0].data, want)
				}
			}
		})
	}
	sum, err := ReadSummary(o.OutDir)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sum) != fmt.Sprint(res) {
		t.Errorf("images.json = %+v, Build returned %+v", sum, res)
	}
	var table bytes.Buffer
	if err := WriteTable(&table, res); err != nil {
		t.Fatal(err)
	}
	for _, img := range res.Images {
		if !strings.Contains(table.String(), img.Ref) || !strings.Contains(table.String(), img.Digest) || !strings.Contains(table.String(), img.Platforms[1].Digest) {
			t.Errorf("table lacks %s:\n%s", img.Ref, table.String())
		}
	}
}

// TestOptionsShapeTheImages checks tag, prefix, platforms and components.
func TestOptionsShapeTheImages(t *testing.T) {
	o := fakeOptions(t)
	o.Tag = "v1.2.3"
	o.RepositoryPrefix = "localhost:5000/mesh"
	o.Platforms = []string{"linux/arm64"}
	o.Components = []string{"proxy,identity"}
	res, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, img := range res.Images {
		refs = append(refs, img.Ref)
		if len(img.Platforms) != 1 || img.Platforms[0].Platform != "linux/arm64" {
			t.Errorf("%s platforms %+v", img.Ref, img.Platforms)
		}
	}
	if want := []string{"localhost:5000/mesh/identity:v1.2.3", "localhost:5000/mesh/proxy:v1.2.3"}; !slices.Equal(refs, want) {
		t.Errorf("refs %v, want %v", refs, want)
	}
	entries, _ := os.ReadDir(o.OutDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"identity.tar", "images.json", "proxy.tar"}; !slices.Equal(names, want) {
		t.Errorf("output folder holds %v, want %v", names, want)
	}
}

// TestFakeBuildReproducible checks that the packaging alone is
// reproducible: byte-identical tarballs in two folders.
func TestFakeBuildReproducible(t *testing.T) {
	o := fakeOptions(t)
	o.Components = []string{"proxy"}
	a, err := Build(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	o2 := o
	o2.OutDir = t.TempDir()
	b, err := Build(context.Background(), o2)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("different results:\n%+v\n%+v", a, b)
	}
	ta, _ := os.ReadFile(filepath.Join(o.OutDir, "proxy.tar"))
	tb, _ := os.ReadFile(filepath.Join(o2.OutDir, "proxy.tar"))
	if !bytes.Equal(ta, tb) {
		t.Error("the tarballs differ")
	}
	// Another revision is another image.
	o3 := o
	o3.OutDir, o3.Revision = t.TempDir(), "other"
	c, err := Build(context.Background(), o3)
	if err != nil {
		t.Fatal(err)
	}
	if c.Images[0].Digest == a.Images[0].Digest {
		t.Error("the revision label does not change the digest")
	}
}

// TestRealBuildReproducible builds proxy-init for real (the smallest
// component) for both platforms, twice into different folders, and checks
// digests, the binaries' architectures and the linked version.
func TestRealBuildReproducible(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed:", err)
	}
	var results []Result
	var dirs []string
	for range 2 {
		o := Options{OutDir: t.TempDir(), Components: []string{"proxy-init"}, Tag: "v0.0.1-test", Revision: "test"}
		res, err := Build(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
		dirs = append(dirs, o.OutDir)
	}
	if fmt.Sprint(results[0]) != fmt.Sprint(results[1]) {
		t.Fatalf("two builds differ:\n%+v\n%+v", results[0], results[1])
	}
	ta, _ := os.ReadFile(filepath.Join(dirs[0], "proxy-init.tar"))
	tb, _ := os.ReadFile(filepath.Join(dirs[1], "proxy-init.tar"))
	if !bytes.Equal(ta, tb) {
		t.Error("the tarballs differ")
	}
	_, _, imgs := readImages(t, filepath.Join(dirs[0], "proxy-init.tar"))
	machines := map[string]elf.Machine{"linux/amd64": elf.EM_X86_64, "linux/arm64": elf.EM_AARCH64}
	for p, img := range imgs {
		files := layerFiles(t, img)
		if len(files) != 1 || files[0].name != "proxy-init" {
			t.Fatalf("%s: layer holds %d files", p, len(files))
		}
		f, err := elf.NewFile(bytes.NewReader(files[0].data))
		if err != nil {
			t.Fatalf("%s: not an ELF binary: %v", p, err)
		}
		if f.Machine != machines[p] {
			t.Errorf("%s: binary for %v", p, f.Machine)
		}
		if slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
			t.Errorf("%s: binary is dynamically linked", p)
		}
		if p != "linux/"+runtime.GOARCH {
			continue
		}
		bin := filepath.Join(t.TempDir(), "proxy-init")
		if err := os.WriteFile(bin, files[0].data, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "--version").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "proxy-init v0.0.1-test" {
			t.Errorf("proxy-init --version: %q, %v", out, err)
		}
	}
}

func TestBadOptions(t *testing.T) {
	good := fakeOptions(t)
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"no out", func(o *Options) { o.OutDir = "" }, "no output folder"},
		{"tag", func(o *Options) { o.Tag = "-bad tag" }, `tag "-bad tag"`},
		{"platform os", func(o *Options) { o.Platforms = []string{"windows/amd64"} }, "want linux/<arch>"},
		{"platform arch", func(o *Options) { o.Platforms = []string{"linux/sparc"} }, `architecture "sparc"`},
		{"platform variant", func(o *Options) { o.Platforms = []string{"linux/arm/v7"} }, "want linux/<arch>"},
		{"platform twice", func(o *Options) { o.Platforms = []string{"linux/amd64,linux/amd64"} }, "given twice"},
		{"no platform", func(o *Options) { o.Platforms = []string{" , "} }, "no platform"},
		{"component", func(o *Options) { o.Components = []string{"proxy,web"} }, `unknown component "web"`},
		{"component twice", func(o *Options) { o.Components = []string{"proxy", "proxy"} }, "given twice"},
		{"prefix host", func(o *Options) { o.RepositoryPrefix = "linkerd-go" }, "must start with a registry host"},
		{"prefix case", func(o *Options) { o.RepositoryPrefix = "ghcr.io/LinkerD" }, "repository prefix"},
		{"prefix chars", func(o *Options) { o.RepositoryPrefix = "ghcr.io/a b" }, "repository prefix"},
		{"revision", func(o *Options) { o.Revision = "a b" }, "white space"},
		{"root", func(o *Options) { o.Root = t.TempDir() }, "not a linkerd-go checkout"},
		{"build fails", func(o *Options) { o.Go = "/nonexistent/go" }, "go build of identity for linux/amd64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			o.OutDir = t.TempDir()
			tc.change(&o)
			_, err := Build(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

func TestRevision(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, b)
		}
	}
	if _, err := Revision(context.Background(), dir); err == nil {
		t.Error("no error outside a git checkout")
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "a")
	git("commit", "-q", "-m", "a")
	rev, err := Revision(context.Background(), dir)
	if err != nil || len(rev) != 40 {
		t.Fatalf("clean revision %q, %v", rev, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirty, err := Revision(context.Background(), dir)
	if err != nil || dirty != rev+"-dirty" {
		t.Errorf("dirty revision %q, %v; want %s-dirty", dirty, err, rev)
	}
}

func TestRefAndUsers(t *testing.T) {
	if got := Ref("ghcr.io/linkerd-go/", "proxy", "dev"); got != "ghcr.io/linkerd-go/proxy:dev" {
		t.Errorf("Ref = %q", got)
	}
	if User("proxy") != "2102:2102" || User("identity") != "65532:65532" || User("proxy-init") != "65532:65532" {
		t.Error("wrong users")
	}
}
