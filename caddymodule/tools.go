package caddymodule

import "github.com/kayako-loginshare/caddy-loginshare/backends"

// Chains returns the provisioned backends of each endpoint, in the order
// they are asked, by the names audit lines use. The backends are the modules
// themselves (not the handler's timing wrappers), so a tool can ask them for
// optional interfaces such as backends.Prober. When both endpoints use the
// `backend` blocks, the two chains hold the same backends.
func (h *Handler) Chains() (user, staff []backends.Named) {
	unwrap := func(chain []backends.Named) []backends.Named {
		out := make([]backends.Named, 0, len(chain))
		for _, nb := range chain {
			nb.Backend = unwrapTimed(nb.Backend)
			out = append(out, nb)
		}
		return out
	}
	return unwrap(h.userChain), unwrap(h.staffChain)
}
