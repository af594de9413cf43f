package output

import "testing"

// For the external tests (live_test.go, package output_test, which
// imports the daemon, whose configuration imports this package).

type (
	Rsyslog    = rsyslog
	NATSServer = natsServer
)

var (
	StartRsyslog   = startRsyslog
	StartNATS      = startNATS
	StreamMessages = streamMessages
	ReadLines      = readLines
	WaitFor        = waitFor
	RecordUID      = recordUID
)

func (r *rsyslog) TCPPort() int                              { return r.tcp }
func (r *rsyslog) Lines(t testing.TB, input string) []string { return r.lines(t, input) }
func (n *natsServer) URL() string                            { return n.url() }
