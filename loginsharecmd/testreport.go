package loginsharecmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kayako-loginshare/caddy-loginshare/backends"
	"github.com/kayako-loginshare/caddy-loginshare/caddymodule"
)

// testReport is everything `test` found out, ready to print.
type testReport struct {
	opts      testOptions
	adapter   string
	warnings  []string // the adapter's
	site      *site
	endpoint  string
	username  string
	configErr string // loading or provisioning failed

	result caddymodule.LoginResult
	steps  []backends.Step
	probes []probeLine
	logs   []logEntry

	password string
	secrets  []string
}

// cleaner removes the typed password and the config's secrets, in every
// spelling an error or a document might carry them, from s.
func (r *testReport) cleaner() func(string) string {
	var forms []string
	if r.password != "" {
		forms = passwordForms(r.password)
	}
	for _, s := range r.secrets {
		forms = append(forms, passwordForms(s)...)
	}
	return func(s string) string {
		for _, f := range forms {
			s = strings.ReplaceAll(s, f, mask)
		}
		return s
	}
}

// print writes the report and returns code.
func (r *testReport) print(sio stdio, cmd *cobra.Command, code int) int {
	var err error
	if r.opts.json {
		err = r.writeJSON(sio.out)
	} else {
		err = r.writeText(sio.out)
	}
	if err != nil {
		fmt.Fprintf(sio.err, "%s: %v\n", cmd.CommandPath(), err)
		return exitBroken
	}
	return code
}

func (r *testReport) configLine() string {
	s := fmt.Sprintf("%s (%s)", r.opts.config, orNone(r.adapter))
	if len(r.opts.envfiles) > 0 {
		s += ", environment from " + strings.Join(r.opts.envfiles, ", ")
	}
	return s
}

func (r *testReport) endpointPath() string {
	if r.endpoint == "staff" {
		return r.site.staffPath
	}
	return r.site.userPath
}

// outcomeSentence says what the outcome means for the person at Kayako.
func outcomeSentence(class backends.Class) string {
	switch class {
	case backends.OK:
		return "the person would be logged in"
	case backends.Unavailable:
		return "the endpoint could not decide: Kayako shows message_unavailable"
	case backends.AmbiguousUser:
		return "a configuration error (the user filter matches several entries): Kayako shows message_invalid"
	case backends.RefusedInterface, backends.RefusedCaller:
		return "refused before any backend: Kayako shows message_denied"
	}
	return "a definite failure: Kayako shows message_invalid"
}

func (r *testReport) writeText(w io.Writer) error {
	clean := r.cleaner()
	var b strings.Builder
	line := func(label, value string) { b.WriteString(textLine(label, tidy(clean(value)))) }
	more := func(value string) { b.WriteString(strings.TrimRight(strings.Repeat(" ", 14)+clean(value), " ") + "\n") }
	line("config", r.configLine())
	for _, wn := range r.warnings {
		line("warning", wn)
	}
	if r.site != nil {
		line("handler", r.site.describe())
	}
	for _, e := range r.logs {
		line("log", e.text())
	}
	if r.configErr != "" {
		line("error", r.configErr)
		_, err := io.WriteString(w, b.String())
		return err
	}
	if r.opts.probe {
		if len(r.probes) == 0 {
			line("probe", "the handler has no backend")
		}
		for _, p := range r.probes {
			line("probe", p.text())
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	login := fmt.Sprintf("%s endpoint (%s), username %q", r.endpoint, r.endpointPath(), r.username)
	if r.endpoint == "staff" {
		login += ", interface " + r.opts.iface
	}
	line("login", login+"; throttle off for this test")
	for _, s := range r.steps {
		line("step", s.Source+": "+s.What)
		for _, f := range s.Fields {
			more("  " + f.Key + ": " + oneLine(f.Value))
		}
	}
	res := r.result
	line("outcome", fmt.Sprintf("%s: %s", res.Outcome, outcomeSentence(res.Outcome)))
	if res.Reason != "" {
		line("reason", oneLine(res.Reason))
	}
	if res.Backend != "" {
		by := res.Backend
		if res.Server != "" {
			by += ", server " + res.Server
		}
		line("backend", by)
	}
	if res.Username != "" && res.Username != r.username {
		line("username", res.Username+" (as the directory has it)")
	}
	if res.Title != "" {
		label := "user group"
		if r.endpoint == "staff" {
			label = "team"
		}
		line(label, res.Title)
	}
	if res.Outcome == backends.Unavailable {
		line("note", "--probe checks every server of the handler's backends and the service account (bind_password)")
	}
	if len(res.Document) > 0 {
		doc := strings.Split(strings.TrimRight(string(res.Document), "\n"), "\n")
		line("document", doc[0])
		for _, l := range doc[1:] {
			more(l)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// tidy drops the ": " go-ldap leaves at the end of an error without a
// diagnostic message, and trailing blanks.
func tidy(s string) string {
	s = strings.TrimRight(s, " ")
	if strings.HasSuffix(s, `":`) {
		s = strings.TrimSuffix(s, ":")
	}
	return s
}

// oneLine keeps a value on its line.
func oneLine(s string) string {
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

func (e logEntry) text() string {
	s := e.Level + " "
	if e.Logger != "" {
		s += e.Logger + ": "
	}
	s += e.Message
	if len(e.Fields) > 0 {
		s += " " + string(e.Fields)
	}
	return oneLine(s)
}

func (p probeLine) text() string {
	who := p.backend
	if p.module != "" && p.module != p.backend {
		who += " (" + p.module + ")"
	}
	who += " [" + p.endpoints + "]"
	if !p.prober {
		return who + ": no probe (this backend has no server to reach)"
	}
	s := who + ": " + orNone(p.server) + " "
	if p.err != nil {
		return s + "FAILED: " + oneLine(p.err.Error())
	}
	s += "OK"
	if p.detail != "" {
		s += " (" + p.detail + ")"
	}
	return s
}

// The --json object.
type jsonTest struct {
	Config   string      `json:"config"`
	Adapter  string      `json:"adapter,omitempty"`
	Warnings []string    `json:"warnings,omitempty"`
	Handler  string      `json:"handler,omitempty"`
	Error    string      `json:"error,omitempty"`
	Endpoint string      `json:"endpoint,omitempty"`
	Outcome  string      `json:"outcome,omitempty"`
	Reason   string      `json:"reason,omitempty"`
	Backend  string      `json:"backend,omitempty"`
	Server   string      `json:"server,omitempty"`
	Username string      `json:"username,omitempty"`
	Title    string      `json:"title,omitempty"`
	Steps    []jsonStep  `json:"steps,omitempty"`
	Document string      `json:"document,omitempty"`
	Probe    []jsonProbe `json:"probe,omitempty"`
	Log      []logEntry  `json:"log,omitempty"`
}

type jsonStep struct {
	Source string      `json:"source"`
	What   string      `json:"what"`
	Fields []jsonField `json:"fields"`
}

type jsonField struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type jsonProbe struct {
	Backend   string `json:"backend"`
	Module    string `json:"module,omitempty"`
	Endpoints string `json:"endpoints"`
	Probe     bool   `json:"probe"`
	Server    string `json:"server,omitempty"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	Detail    string `json:"detail,omitempty"`
}

func (r *testReport) writeJSON(w io.Writer) error {
	clean := r.cleaner()
	j := jsonTest{Config: r.opts.config, Adapter: r.adapter, Warnings: r.warnings, Error: r.configErr, Log: r.logs}
	if r.site != nil {
		j.Handler = r.site.describe()
	}
	switch {
	case r.configErr != "":
		j.Outcome = "config_error"
	case r.opts.probe:
		j.Probe = []jsonProbe{}
		for _, p := range r.probes {
			jp := jsonProbe{Backend: p.backend, Module: p.module, Endpoints: p.endpoints, Probe: p.prober,
				Server: p.server, OK: p.prober && p.err == nil, Detail: p.detail}
			if p.err != nil {
				jp.Error = p.err.Error()
			}
			j.Probe = append(j.Probe, jp)
		}
	default:
		res := r.result
		j.Endpoint, j.Outcome, j.Reason = r.endpoint, string(res.Outcome), res.Reason
		j.Backend, j.Server, j.Username, j.Title = res.Backend, res.Server, res.Username, res.Title
		j.Document = string(res.Document)
		j.Steps = []jsonStep{}
		for _, s := range r.steps {
			js := jsonStep{Source: s.Source, What: s.What, Fields: []jsonField{}}
			for _, f := range s.Fields {
				js.Fields = append(js.Fields, jsonField{f.Key, f.Value})
			}
			j.Steps = append(j.Steps, js)
		}
	}
	j.cleanStrings(clean)
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // the document stays readable XML
	enc.SetIndent("", "  ")
	if err := enc.Encode(j); err != nil {
		return err
	}
	// Once more as text, for a secret a JSON escape could still spell out.
	out := strings.TrimSuffix(clean(buf.String()), "\n")
	if !json.Valid([]byte(out)) {
		return fmt.Errorf("internal error: the cleaned report is not JSON")
	}
	_, err := io.WriteString(w, out+"\n")
	return err
}

// cleanStrings applies clean to every string of the object.
func (j *jsonTest) cleanStrings(clean func(string) string) {
	for _, p := range []*string{&j.Config, &j.Handler, &j.Error, &j.Reason, &j.Backend, &j.Server, &j.Username, &j.Title, &j.Document} {
		*p = clean(*p)
	}
	j.Warnings = cleanAll(j.Warnings, clean)
	for i := range j.Steps {
		j.Steps[i].What = clean(j.Steps[i].What)
		for k := range j.Steps[i].Fields {
			f := &j.Steps[i].Fields[k]
			f.Key, f.Value = clean(f.Key), clean(f.Value)
		}
	}
	for i := range j.Probe {
		j.Probe[i].Error, j.Probe[i].Detail = clean(j.Probe[i].Error), clean(j.Probe[i].Detail)
	}
	for i := range j.Log {
		j.Log[i].Message = clean(j.Log[i].Message)
		if len(j.Log[i].Fields) > 0 {
			if f := clean(string(j.Log[i].Fields)); json.Valid([]byte(f)) {
				j.Log[i].Fields = json.RawMessage(f)
			} else {
				j.Log[i].Fields = nil
			}
		}
	}
}
