package snmp

import (
	"context"
	"errors"
	"net"
	"sync"
)

// maxInFlight bounds the requests answered at once per listener; a
// request that reads open connections waits for the workers.
const maxInFlight = 8

// Serve answers the messages arriving on conn until ctx is done, then
// closes conn. It returns nil after ctx is done, else the read error.
func Serve(ctx context.Context, conn *net.UDPConn, h *Handler) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, maxInFlight)
	buf := make([]byte, 65536)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		msg := append([]byte(nil), buf[:n]...)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if out := h.Handle(ctx, msg, from.Addr()); out != nil {
				_, _ = conn.WriteToUDPAddrPort(out, from)
			}
		}()
	}
}
