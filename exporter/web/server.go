package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	toolkit "github.com/prometheus/exporter-toolkit/web"
)

// Server is the HTTP listener, with TLS and basic authentication from a
// Prometheus exporter-toolkit web configuration file, as node_exporter's.
type Server struct {
	ln      net.Listener
	srv     *http.Server
	cfgFile string
	log     *slog.Logger
}

// Listen opens addr (host:port) for h. webConfigFile (exporter.web_config_file)
// is checked now; empty serves plain HTTP.
func Listen(addr string, h http.Handler, webConfigFile string, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.Default()
	}
	if webConfigFile != "" {
		if err := toolkit.Validate(webConfigFile); err != nil {
			return nil, fmt.Errorf("exporter.web_config_file %s: %w", webConfigFile, err)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("exporter.listen %s: %w (choose another address or set it empty to serve no HTTP)", addr, err)
	}
	return &Server{
		ln:      ln,
		srv:     &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute},
		cfgFile: webConfigFile,
		log:     log,
	}, nil
}

// Addr returns the address listened on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve serves until ctx is done.
func (s *Server) Serve(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.srv.Shutdown(sctx)
			cancel()
		case <-done:
		}
	}()
	defer close(done)
	cfg := s.cfgFile
	err := toolkit.Serve(s.ln, s.srv, &toolkit.FlagConfig{WebConfigFile: &cfg}, s.log)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
