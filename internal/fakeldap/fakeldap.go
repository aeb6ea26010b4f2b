// Package fakeldap is a scriptable in-process LDAP server on 127.0.0.1:0 for
// what a real directory cannot be made to do on demand: hang after accepting,
// reset mid-search, answer garbage, accept anonymous binds, answer 49 with
// Active Directory's diagnostic texts, or 51/52. It counts connections,
// binds and searches so tests can assert what reached the wire.
//
// It speaks just enough LDAPv3 (BER via go-asn1-ber) for go-ldap clients:
// bind, search, unbind, abandon, and extended requests (StartTLS is refused
// with protocolError unless TLS is set).
package fakeldap

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	goldap "github.com/go-ldap/ldap/v3"
)

// Action says what the server does with a request (or a new connection).
type Action int

const (
	Reply   Action = iota // answer with Response
	Hang                  // never answer; keep the connection open
	Reset                 // close the connection with a TCP RST
	Garbage               // write bytes that are not BER, then keep reading
	Close                 // close the connection cleanly
)

// Request is one decoded LDAP request.
type Request struct {
	Conn      int // 1-based connection number
	MessageID int64
	Op        string // "bind", "search", "extended", "unbind", "abandon", "other"

	// bind
	DN       string
	Password string
	Simple   bool

	// search
	BaseDN     string
	Scope      int
	SizeLimit  int64
	Filter     string
	Attributes []string

	// extended
	OID string
}

// Entry is one search result entry.
type Entry struct {
	DN    string
	Attrs map[string][]string
}

// Response is what the handler wants sent back.
type Response struct {
	Action     Action
	Code       uint16 // LDAP result code
	Diagnostic string
	Entries    []Entry
	References []string // search continuation references
	// PartialBeforeReset: with Action Reset on a search, send the entries
	// first and then reset (a directory dying mid-search).
	PartialBeforeReset bool
	// Delay before answering.
	Delay time.Duration
}

// Handler answers requests. It runs on the connection's goroutine.
type Handler func(Request) Response

// Server is a running fake directory.
type Server struct {
	Addr string // 127.0.0.1:port
	URL  string // ldap://127.0.0.1:port (ldaps:// with TLS)

	Conns    atomic.Int64 // connections accepted
	Binds    atomic.Int64 // bind requests received
	Searches atomic.Int64 // search requests received
	Packets  atomic.Int64 // LDAP messages received, of any kind

	handler  Handler
	onAccept func(conn int) Action
	ln       net.Listener
	mu       sync.Mutex
	conns    map[net.Conn]bool
	reqs     []Request
	wg       sync.WaitGroup
	closed   atomic.Bool
}

// Option configures Start.
type Option func(*Server)

// WithTLS makes the listener speak LDAPS with cfg.
func WithTLS(cfg *tls.Config) Option {
	return func(s *Server) {
		s.ln = tls.NewListener(s.ln, cfg)
		s.URL = "ldaps://" + s.Addr
	}
}

// OnAccept decides what happens to each new connection: Reply serves it,
// Hang accepts and never reads (no TLS handshake either), Reset/Close drop
// it, Garbage greets it with junk. Default: Reply.
func OnAccept(f func(conn int) Action) Option {
	return func(s *Server) { s.onAccept = f }
}

// Start listens on 127.0.0.1:0 and serves until t's cleanup.
func Start(t testing.TB, h Handler, opts ...Option) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fakeldap: %v", err)
	}
	s := &Server{handler: h, ln: ln, conns: map[net.Conn]bool{}}
	s.Addr = ln.Addr().String()
	s.URL = "ldap://" + s.Addr
	for _, o := range opts {
		o(s)
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.Close)
	return s
}

// Close stops the listener, drops every connection and waits for the
// server's goroutines.
func (s *Server) Close() {
	if !s.closed.CompareAndSwap(false, true) {
		return
	}
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// DropConns closes every open connection from the server side (a directory
// cutting idle connections), leaving the listener up.
func (s *Server) DropConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// OpenConns counts the connections currently open.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Requests returns a copy of every request received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// BindsFor counts the bind requests for dn.
func (s *Server) BindsFor(dn string) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Op == "bind" && strings.EqualFold(r.DN, dn) {
			n++
		}
	}
	return n
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		n := int(s.Conns.Add(1))
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				c.Close()
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
			s.handle(c, n)
		}()
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	if tc, ok := c.(*tls.Conn); ok {
		if nc, ok := tc.NetConn().(*net.TCPConn); ok {
			_ = nc.SetLinger(0)
		}
	}
	c.Close()
}

var garbage = []byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01, 0x61, 0x00}

func (s *Server) handle(c net.Conn, n int) {
	action := Reply
	if s.onAccept != nil {
		action = s.onAccept(n)
	}
	switch action {
	case Hang:
		raw := c
		if tc, ok := c.(*tls.Conn); ok {
			raw = tc.NetConn() // no handshake either
		}
		_, _ = io.Copy(io.Discard, raw) // until the client or Close drops it
		return
	case Reset:
		reset(c)
		return
	case Close:
		return
	case Garbage:
		_, _ = c.Write(garbage)
	}
	for {
		p, err := ber.ReadPacket(c)
		if err != nil {
			return
		}
		s.Packets.Add(1)
		req, err := decode(p, n)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		switch req.Op {
		case "bind":
			s.Binds.Add(1)
		case "search":
			s.Searches.Add(1)
		case "unbind":
			return
		case "abandon":
			continue
		}
		resp := Response{}
		if s.handler != nil {
			resp = s.handler(req)
		} else {
			resp = Default(req)
		}
		if resp.Delay > 0 {
			time.Sleep(resp.Delay)
		}
		switch resp.Action {
		case Hang:
			_, _ = io.Copy(io.Discard, c)
			return
		case Reset:
			if req.Op == "search" && resp.PartialBeforeReset {
				for _, e := range resp.Entries {
					_, _ = c.Write(entryPacket(req.MessageID, e).Bytes())
				}
			}
			reset(c)
			return
		case Close:
			return
		case Garbage:
			_, _ = c.Write(garbage)
			continue
		}
		if err := write(c, req, resp); err != nil {
			return
		}
	}
}

// Default answers like a permissive directory: anonymous binds succeed,
// simple binds with a password fail with 49, searches find nothing, StartTLS
// is refused.
func Default(r Request) Response {
	switch r.Op {
	case "bind":
		if r.Password == "" {
			return Response{Code: 0}
		}
		return Response{Code: goldap.LDAPResultInvalidCredentials}
	case "extended":
		return Response{Code: goldap.LDAPResultProtocolError, Diagnostic: "unsupported extended operation"}
	}
	return Response{}
}

// ADInvalid returns AD's 49 answer with the given sub-code, e.g. "52e".
func ADInvalid(sub string) Response {
	return Response{Code: goldap.LDAPResultInvalidCredentials,
		Diagnostic: fmt.Sprintf("80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data %s, v4563", sub)}
}

func decode(p *ber.Packet, conn int) (Request, error) {
	if len(p.Children) < 2 {
		return Request{}, errors.New("short LDAP message")
	}
	id, _ := p.Children[0].Value.(int64)
	op := p.Children[1]
	r := Request{Conn: conn, MessageID: id, Op: "other"}
	str := func(i int) string {
		if i < len(op.Children) {
			return string(op.Children[i].Data.Bytes())
		}
		return ""
	}
	num := func(i int) int64 {
		if i < len(op.Children) {
			v, _ := ber.ParseInt64(op.Children[i].Data.Bytes())
			return v
		}
		return 0
	}
	switch op.Tag {
	case goldap.ApplicationBindRequest:
		r.Op = "bind"
		r.DN = str(1)
		if len(op.Children) > 2 && op.Children[2].Tag == 0 {
			r.Simple = true
			r.Password = str(2)
		}
	case goldap.ApplicationUnbindRequest:
		r.Op = "unbind"
	case goldap.ApplicationSearchRequest:
		r.Op = "search"
		r.BaseDN = str(0)
		r.Scope = int(num(1))
		r.SizeLimit = num(3)
		if len(op.Children) > 6 {
			f, err := goldap.DecompileFilter(op.Children[6])
			if err == nil {
				r.Filter = f
			}
		}
		if len(op.Children) > 7 {
			for _, a := range op.Children[7].Children {
				r.Attributes = append(r.Attributes, string(a.Data.Bytes()))
			}
		}
	case goldap.ApplicationAbandonRequest:
		r.Op = "abandon"
	case goldap.ApplicationExtendedRequest:
		r.Op = "extended"
		r.OID = str(0)
	}
	return r, nil
}

func envelope(id int64) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "LDAP Response")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, "MessageID"))
	return p
}

func result(id int64, tag ber.Tag, code uint16, diag string) *ber.Packet {
	p := envelope(id)
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "Result")
	op.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, int64(code), "resultCode"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", "matchedDN"))
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, "diagnosticMessage"))
	p.AppendChild(op)
	return p
}

func entryPacket(id int64, e Entry) *ber.Packet {
	p := envelope(id)
	op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchResultEntry, nil, "Entry")
	op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, e.DN, "DN"))
	attrs := ber.NewSequence("attributes")
	for name, vals := range e.Attrs {
		a := ber.NewSequence("attribute")
		a.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, name, "type"))
		set := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSet, nil, "values")
		for _, v := range vals {
			set.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, v, "value"))
		}
		a.AppendChild(set)
		attrs.AppendChild(a)
	}
	op.AppendChild(attrs)
	p.AppendChild(op)
	return p
}

func write(c net.Conn, req Request, resp Response) error {
	var out []*ber.Packet
	switch req.Op {
	case "bind":
		out = append(out, result(req.MessageID, goldap.ApplicationBindResponse, resp.Code, resp.Diagnostic))
	case "search":
		for _, e := range resp.Entries {
			out = append(out, entryPacket(req.MessageID, e))
		}
		for _, ref := range resp.References {
			p := envelope(req.MessageID)
			op := ber.Encode(ber.ClassApplication, ber.TypeConstructed, goldap.ApplicationSearchResultReference, nil, "Reference")
			op.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, ref, "URI"))
			p.AppendChild(op)
			out = append(out, p)
		}
		out = append(out, result(req.MessageID, goldap.ApplicationSearchResultDone, resp.Code, resp.Diagnostic))
	case "extended":
		out = append(out, result(req.MessageID, goldap.ApplicationExtendedResponse, resp.Code, resp.Diagnostic))
	default:
		return nil
	}
	var buf []byte
	for _, p := range out {
		buf = append(buf, p.Bytes()...)
	}
	_, err := c.Write(buf)
	return err
}
