package snmp

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
)

type actorKey struct{}
type sourceKey struct{}

// withActor records who sends the request (as slog key-value pairs) for
// the audit line of a set.
func withActor(ctx context.Context, args ...any) context.Context {
	return context.WithValue(ctx, actorKey{}, args)
}

// withSource records the request's source address for the SNMPv3 path,
// which learns the user only after decoding.
func withSource(ctx context.Context, from netip.Addr) context.Context {
	return context.WithValue(ctx, sourceKey{}, from.Unmap().String())
}

func sourceOf(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

// auditSet logs one line for a set-request that reached its commits: each
// object and the value set, who set it, and whether it was applied. A set
// refused before its commits (no access, wrong type or value) changed
// nothing and is not an operator action.
func (h *Handler) auditSet(r *Request, vbs []Binding, err error) {
	if h.Log == nil {
		return
	}
	var b strings.Builder
	for i, vb := range vbs {
		if i > 0 {
			b.WriteString(", ")
		}
		if v, ok := vb.Value.V.([]byte); ok {
			fmt.Fprintf(&b, "%s=%q", vb.OID, v)
		} else {
			fmt.Fprintf(&b, "%s=%v", vb.OID, vb.Value.V)
		}
	}
	args := []any{"action", "snmp set", "set", b.String()}
	if a, ok := r.Ctx.Value(actorKey{}).([]any); ok {
		args = append(args, a...)
	}
	if err != nil {
		h.Log.Warn("operator action failed", append(args, "err", err)...)
		return
	}
	h.Log.Info("operator action", args...)
}
