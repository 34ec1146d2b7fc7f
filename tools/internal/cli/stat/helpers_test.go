package stat

import (
	"bytes"
	"io"
)

type bytesBuffer = bytes.Buffer

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
