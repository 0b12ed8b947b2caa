package gateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIPs finds a request's client address: the socket peer, unless the
// peer is a trusted proxy; then the rightmost X-Forwarded-For entry that is
// not itself a trusted proxy, or X-Real-IP.
type clientIPs struct {
	trusted []netip.Prefix
}

func (ci *clientIPs) isTrusted(a netip.Addr) bool { return inPrefixes(ci.trusted, a) }

func inPrefixes(list []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// peerAddr parses the socket peer of r.
func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// addr returns the client address of r.
func (ci *clientIPs) addr(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !peer.IsValid() || !ci.isTrusted(peer) {
		return peer
	}
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		hops := strings.Split(strings.Join(xff, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				return peer // a garbled chain: trust nothing in it
			}
			a = a.Unmap().WithZone("")
			if !ci.isTrusted(a) {
				return a
			}
		}
	}
	if xr := strings.TrimSpace(r.Header.Get("X-Real-IP")); xr != "" {
		if a, err := netip.ParseAddr(xr); err == nil {
			return a.Unmap().WithZone("")
		}
	}
	return peer
}

// clientIP is addr as a string ("" if unknown).
func (ci *clientIPs) clientIP(r *http.Request) string {
	a := ci.addr(r)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// rateKey groups a client address for rate limits and lockouts: IPv4
// addresses as they are, IPv6 by /64 (one customer usually owns a /64).
func rateKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// netRules is an allow list and a block list; block wins, an empty allow
// list allows everything.
type netRules struct {
	allow, block []netip.Prefix
}

func newNetRules(allow, block []string) (netRules, error) {
	a, err := parsePrefixes(allow)
	if err != nil {
		return netRules{}, err
	}
	b, err := parsePrefixes(block)
	if err != nil {
		return netRules{}, err
	}
	return netRules{allow: a, block: b}, nil
}

// permits reports whether ip may connect.
func (n netRules) permits(ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return len(n.allow) == 0 && len(n.block) == 0
	}
	if inPrefixes(n.block, a) {
		return false
	}
	return len(n.allow) == 0 || inPrefixes(n.allow, a)
}
