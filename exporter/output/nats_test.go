package output

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer is a Debian nats-server with JetStream the test started on
// 127.0.0.1, its store in a temporary directory kept across restarts.
type natsServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed (apt-get install nats-server); skipping")
	}
	n := &natsServer{t: t, bin: bin, port: freePort(t, "tcp"), dir: t.TempDir()}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(n.port), "-sd", n.dir)
	n.cmd.Stdout, n.cmd.Stderr = nil, nil
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	waitFor(n.t, 10*time.Second, "nats-server up", func() bool {
		nc, err := nats.Connect(n.url(), nats.Timeout(200*time.Millisecond))
		if err != nil {
			return false
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err == nil
	})
}

// kill ends the server with SIGKILL, as a crash would.
func (n *natsServer) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	_ = n.cmd.Wait()
	n.cmd = nil
}

// streamMessages returns the data of every message of a stream, in order.
func streamMessages(t testing.TB, url, stream string) []string {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	// A consumer, as a pipeline would read them.
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for uint64(len(out)) < info.State.Msgs {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, string(m.Data()))
			n++
		}
		if n == 0 {
			t.Fatalf("fetch: nothing after %d of %d messages: %v", len(out), info.State.Msgs, batch.Error())
		}
	}
	return out
}

// The records reach JetStream, acknowledged, byte-identical to the file
// output's lines; nats-server killed mid-stream and restarted loses
// nothing within the queue bound; beyond it the newest records are
// dropped and counted, and sent + dropped is every record.
func TestNATSJetStream(t *testing.T) {
	srv := startNATS(t)
	path := filepath.Join(t.TempDir(), "records.json")
	const queue = 1 << 20
	s, err := New(Config{
		File: &FileConfig{Path: path},
		NATS: &NATSConfig{URL: srv.url(), Subject: "tcptap.records", Stream: "TCPTAP"},
	}, Options{QueueBytes: queue, FlushTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs := makeRecords(t, 2000)
	next := 0
	// In steps the file output keeps up with (the queue bound is the same
	// for both outputs; only NATS is to fall behind).
	write := func(n int) {
		for i := range n {
			s.Write(&recs[next])
			next++
			if i%50 == 49 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	sentTo := func(n uint64) func() bool {
		return func() bool { st := statsOf(s, "nats"); return st.Sent+st.Dropped == n && st.QueueRecs == 0 }
	}

	// 1. Up: 300 records.
	write(300)
	waitFor(t, 20*time.Second, "300 records acknowledged", sentTo(300))

	// 2. Killed: 300 more wait in the queue (about 450 KB of 1 MiB).
	srv.kill()
	waitFor(t, 10*time.Second, "output down", func() bool { return !statsOf(s, "nats").Up })
	write(300)
	time.Sleep(300 * time.Millisecond)
	st := statsOf(s, "nats")
	if st.QueueRecs != 300 || st.Dropped != 0 {
		t.Fatalf("down: %+v, want 300 queued and none dropped", st)
	}
	t.Logf("nats-server killed: %d records, %d bytes queued", st.QueueRecs, st.QueueBytes)
	srv.start()
	waitFor(t, 40*time.Second, "600 records acknowledged after the restart", sentTo(600))
	if st := statsOf(s, "nats"); st.Sent != 600 || st.Dropped != 0 {
		t.Fatalf("after the restart: %+v", st)
	}

	// 3. Killed again, 1000 records (about 1.5 MB) into the 1 MiB queue:
	// the newest beyond the bound are dropped.
	srv.kill()
	waitFor(t, 10*time.Second, "output down", func() bool { return !statsOf(s, "nats").Up })
	write(1000)
	st = statsOf(s, "nats")
	if st.Dropped == 0 || st.QueueBytes > queue {
		t.Fatalf("1000 records into a 1 MiB queue while down: %+v", st)
	}
	t.Logf("down again: %d queued (%d bytes of %d), %d dropped", st.QueueRecs, st.QueueBytes, queue, st.Dropped)
	srv.start()
	waitFor(t, 60*time.Second, "queue delivered after the second restart", sentTo(1600))
	s.Close()
	st = statsOf(s, "nats")
	if st.Sent+st.Dropped != 1600 || st.Failed != 0 {
		t.Fatalf("final: %+v", st)
	}
	if fst := statsOf(s, "file"); fst.Sent != 1600 {
		t.Fatalf("file output: %+v", fst)
	}

	msgs := streamMessages(t, srv.url(), "TCPTAP")
	lines := readLines(t, path)
	if uint64(len(msgs)) != st.Sent {
		t.Fatalf("the stream holds %d messages, %d records were acknowledged", len(msgs), st.Sent)
	}
	// The first 600 (nothing dropped) equal the file's first 600 lines;
	// the rest are the file's lines in order, less the dropped ones.
	for i := range 600 {
		if msgs[i]+"\n" != lines[i] {
			t.Fatalf("message %d differs from the file's line:\n%s\n%s", i, msgs[i], lines[i])
		}
	}
	j := 600
	for i := 600; i < len(msgs); i++ {
		for j < len(lines) && msgs[i]+"\n" != lines[j] {
			j++
		}
		if j == len(lines) {
			t.Fatalf("message %d is not among the file's lines after the previous one", i)
		}
		j++
	}
	t.Logf("%d records: file %d lines; JetStream %d messages (acknowledged %d, dropped %d beyond the queue), each byte-identical to its file line", 1600, len(lines), len(msgs), st.Sent, st.Dropped)
}

// Over TLS: nats-server with a certificate from a test CA; the output
// verifies it with output.nats.tls_ca_file.
func TestNATSTLS(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed (apt-get install nats-server); skipping")
	}
	dir := t.TempDir()
	writeCA(t, dir)
	port := freePort(t, "tcp")
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-sd", t.TempDir(),
		"--tls", "--tlscert", filepath.Join(dir, "cert.pem"), "--tlskey", filepath.Join(dir, "key.pem"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("tls://127.0.0.1:%d", port)
	ca := filepath.Join(dir, "ca.pem")
	waitFor(t, 10*time.Second, "nats-server with TLS", func() bool {
		nc, err := nats.Connect(url, nats.RootCAs(ca), nats.Timeout(200*time.Millisecond))
		if err != nil {
			return false
		}
		nc.Close()
		return true
	})
	s, err := New(Config{NATS: &NATSConfig{URL: url, Subject: "tcptap.tls", Stream: "TLS", CAFile: ca}},
		Options{QueueBytes: 1 << 20, FlushTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	recs := makeRecords(t, 100)
	for i := range recs {
		s.Write(&recs[i])
	}
	s.Close()
	if st := statsOf(s, "nats"); st.Sent != 100 {
		t.Fatalf("stats %+v", st)
	}
	nc, err := nats.Connect(url, nats.RootCAs(ca))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	str, err := js.Stream(ctx, "TLS")
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		m, err := str.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data)+"\n" != jsonLine(&recs[i]) || m.Header.Get("Nats-Msg-Id") != recs[i].UID {
			t.Fatalf("message %d: %.100s (id %s)", i+1, m.Data, m.Header.Get("Nats-Msg-Id"))
		}
	}
	t.Logf("TLS: %d records stored, each equal, message ID the uid", len(recs))
}
