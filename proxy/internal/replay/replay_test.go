package replay

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// Each attempt reads the whole body from its start, the client's body is
// read once, and the old attempt's reads fail once a new one started.
func TestReplayBodyReplaysFromTheStart(t *testing.T) {
	src := &countingBody{Reader: strings.NewReader("hello, replay")}
	b := NewBody(src)
	first := b.First()
	p := make([]byte, 5)
	if n, err := first.Read(p); n != 5 || err != nil || string(p) != "hello" {
		t.Fatalf("first read: %d %q %v", n, p[:n], err)
	}
	second, ok := b.Again()
	if !ok {
		t.Fatal("again refused a body within the limit")
	}
	if _, err := first.Read(p); !errors.Is(err, errRetired) {
		t.Errorf("retired attempt read: %v, want errRetired", err)
	}
	if err := first.Close(); err != nil || src.closed {
		t.Errorf("retired attempt's Close closed the client's body (err %v)", err)
	}
	got, err := io.ReadAll(second)
	if err != nil || string(got) != "hello, replay" {
		t.Fatalf("second attempt read %q, %v", got, err)
	}
	third, _ := b.Again()
	got, _ = io.ReadAll(third)
	if string(got) != "hello, replay" {
		t.Fatalf("third attempt read %q", got)
	}
	if src.read != len("hello, replay") {
		t.Errorf("read %d bytes of the client's body, want each once (%d)", src.read, len("hello, replay"))
	}
	if third.Close(); src.closed {
		t.Error("the current attempt's Close closed a body that can still be replayed")
	}
}

// A body read past Limit streams on, and cannot start over.
func TestReplayBodyPastTheLimit(t *testing.T) {
	body := bytes.Repeat([]byte("x"), Limit+1000)
	src := &countingBody{Reader: bytes.NewReader(body)}
	b := NewBody(src)
	first := b.First()
	got, err := io.ReadAll(first)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(body))
	}
	if _, ok := b.Again(); ok {
		t.Error("again accepted a body that outgrew what is kept")
	}
	if _, err := b.GetBody(); !errors.Is(err, ErrTooLong) {
		t.Errorf("GetBody: %v, want ErrTooLong", err)
	}
	if first.Close(); !src.closed {
		t.Error("Close of a body that cannot be replayed left the client's body open")
	}
	if len(b.kept) != 0 {
		t.Errorf("%d bytes still kept after the limit", len(b.kept))
	}
}

// Bytes that a retired attempt was reading when it was given up belong to
// the next attempt.
func TestReplayBodyKeepsARetiredAttemptsRead(t *testing.T) {
	pr, pw := io.Pipe()
	b := NewBody(pr)
	first := b.First()
	result := make(chan error, 1)
	go func() {
		_, err := first.Read(make([]byte, 64))
		result <- err
	}()
	// The first attempt is inside the client body's Read; while it waits,
	// the request goes on to a second attempt.
	waitReading(t, b)
	second, ok := b.Again()
	if !ok {
		t.Fatal("again refused")
	}
	go func() {
		pw.Write([]byte("late bytes"))
		pw.Close()
	}()
	if err := <-result; !errors.Is(err, errRetired) {
		t.Errorf("retired attempt's read: %v, want errRetired", err)
	}
	got, err := io.ReadAll(second)
	if err != nil || string(got) != "late bytes" {
		t.Fatalf("second attempt read %q, %v; want the bytes the first was reading", got, err)
	}
}

// waitReading returns once an attempt holds the client body's read lock.
func waitReading(t *testing.T, b *Body) {
	t.Helper()
	for b.rmu.TryLock() {
		b.rmu.Unlock()
		select {
		case <-t.Context().Done():
			t.Fatal("no attempt started reading")
		default:
			runtime.Gosched()
		}
	}
}

type countingBody struct {
	io.Reader
	read   int
	closed bool
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.Reader.Read(p)
	c.read += n
	return n, err
}

func (c *countingBody) Close() error { c.closed = true; return nil }
