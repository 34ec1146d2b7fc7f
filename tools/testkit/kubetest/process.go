package kubetest

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"

	"github.com/linkerd-go/linkerd-go/tools/testkit/childproc"
)

// portInUse reports whether the process died because a port was taken
// between our picking it and its binding it.
func portInUse(p *childproc.Process) bool {
	data, _ := os.ReadFile(p.LogPath)
	return bytes.Contains(data, []byte("address already in use"))
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// Another process may take one before our child binds it; the callers
// retry on "address already in use".
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

var errExited = errors.New("exited")

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
