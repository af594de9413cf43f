package output

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSConfig is the NATS JetStream output.
type NATSConfig struct {
	URL     string // comma-separated server URLs
	Subject string
	// Stream, when set, is created if missing and every publish must
	// land in it.
	Stream          string
	CredentialsFile string
	// TLS files (PEM); a tls:// URL or a CA file turns TLS on.
	CAFile, CertFile, KeyFile string
	// Name is the client's connection name, seen in the server's
	// monitoring.
	Name string
}

// ackTimeout bounds the wait for a batch's acknowledgements.
const ackTimeout = 5 * time.Second

// natsOut publishes each record (the JSON object, without the newline) to
// JetStream and counts it sent only when the server acknowledged that it
// stored it; unacknowledged records stay queued and are published again
// after reconnecting. The record's uid is the message ID (Nats-Msg-Id), so
// JetStream stores a record published twice (its acknowledgement lost)
// once, within the stream's duplicate window (2 minutes by default).
//
// The client's own reconnection is off: a lost connection closes the
// output, whose goroutine reconnects with backoff, trying every URL.
type natsOut struct {
	cfg  NATSConfig
	opts []nats.Option
	nc   *nats.Conn
	js   jetstream.JetStream
	pub  []jetstream.PublishOpt
	futs []jetstream.PubAckFuture
}

func newNATS(cfg NATSConfig) (*natsOut, error) {
	if cfg.URL == "" || cfg.Subject == "" {
		return nil, errors.New("output.nats: url and subject are needed")
	}
	if strings.ContainsAny(cfg.Subject, " \t*>") {
		return nil, fmt.Errorf("output.nats.subject: %q: want a subject without spaces or wildcards", cfg.Subject)
	}
	n := &natsOut{cfg: cfg}
	name := cfg.Name
	if name == "" {
		name = "tcptap"
	}
	n.opts = []nats.Option{nats.Name(name), nats.NoReconnect(), nats.Timeout(5 * time.Second)}
	if cfg.CredentialsFile != "" {
		n.opts = append(n.opts, nats.UserCredentials(cfg.CredentialsFile))
	}
	if cfg.CAFile != "" || cfg.CertFile != "" || strings.Contains(cfg.URL, "tls://") {
		tc, err := TLSConfig(cfg.CAFile, cfg.CertFile, cfg.KeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("output.nats TLS: %w", err)
		}
		n.opts = append(n.opts, nats.Secure(tc))
	}
	if cfg.Stream != "" {
		n.pub = append(n.pub, jetstream.WithExpectStream(cfg.Stream))
	}
	return n, nil
}

func (n *natsOut) open() error {
	nc, err := nats.Connect(n.cfg.URL, n.opts...)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*maxBatchRecords), jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		nc.Close()
		return err
	}
	if n.cfg.Stream != "" {
		ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
		_, err = js.Stream(ctx, n.cfg.Stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: n.cfg.Stream, Subjects: []string{n.cfg.Subject}, Storage: jetstream.FileStorage})
		}
		cancel()
		if err != nil {
			nc.Close()
			return fmt.Errorf("stream %s: %w", n.cfg.Stream, err)
		}
	}
	n.nc, n.js = nc, js
	return nil
}

func (n *natsOut) close() error {
	if n.nc != nil {
		n.nc.Close()
		n.nc, n.js = nil, nil
	}
	return nil
}

func (n *natsOut) check() error {
	if !n.nc.IsConnected() {
		return errors.New("connection lost")
	}
	return nil
}

var uidKey = []byte(`"uid":"`)

// recordUID returns the uid field of a JSON record ("" if none).
func recordUID(rec []byte) string {
	i := bytes.Index(rec, uidKey)
	if i < 0 {
		return ""
	}
	rest := rec[i+len(uidKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

func (n *natsOut) send(b *batch) (int, int, error) {
	if !n.nc.IsConnected() {
		return 0, 0, errors.New("not connected")
	}
	n.futs = n.futs[:0]
	var pubErr error
	failed := 0
	for i := range b.len() {
		rec := bytes.TrimSuffix(b.record(i), []byte{'\n'})
		opts := n.pub
		if uid := recordUID(rec); uid != "" {
			opts = append(opts[:len(opts):len(opts)], jetstream.WithMsgID(uid))
		}
		f, err := n.js.PublishAsync(n.cfg.Subject, rec, opts...)
		if err != nil {
			if errors.Is(err, nats.ErrMaxPayload) && len(n.futs) == i {
				// Refused for good, and nothing before it is pending.
				failed = 1
				break
			}
			pubErr = err
			break
		}
		n.futs = append(n.futs, f)
	}
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	sent := 0
	for _, f := range n.futs {
		select {
		case <-f.Ok():
			sent++
			continue
		case err := <-f.Err():
			pubErr = err
		case <-timer.C:
			pubErr = errors.New("no acknowledgement within " + ackTimeout.String())
		}
		break
	}
	if sent < len(n.futs) {
		failed = 0
	}
	if pubErr != nil && sent < len(n.futs) {
		return sent, 0, pubErr
	}
	return sent, failed, pubErr
}
