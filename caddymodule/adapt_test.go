package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden JSON of testdata/caddyfile_adapt (review every diff)")

// TestCaddyfileAdaptsToGoldenJSON adapts each testdata/caddyfile_adapt/*.caddyfiletest
// (a Caddyfile, a line of ten dashes, the expected JSON) and compares.
func TestCaddyfileAdaptsToGoldenJSON(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatalf("%s has no ---------- separator", f)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, adapt(t, caddyfile), "", "\t"); err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(f, []byte(caddyfile+"\n----------\n"+got.String()+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.TrimSpace(got.String()) != strings.TrimSpace(want) {
				t.Errorf("adapted JSON differs from %s:\n%s", f, got.String())
			}
		})
	}
}

// TestJSONExampleIsTheAdaptedCaddyfile keeps examples/Caddyfile.static.json
// (the JSON form for people who configure Caddy through its API) in step with
// examples/Caddyfile.static.
func TestJSONExampleIsTheAdaptedCaddyfile(t *testing.T) {
	caddyfile, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile.static"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("..", "examples", "Caddyfile.static.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got, norm bytes.Buffer
	if err := json.Indent(&got, adapt(t, string(caddyfile)), "", "\t"); err != nil {
		t.Fatal(err)
	}
	if err := json.Indent(&norm, bytes.TrimSpace(want), "", "\t"); err != nil {
		t.Fatal(err)
	}
	if got.String() != norm.String() {
		t.Errorf("examples/Caddyfile.static.json is stale; regenerate with: caddy adapt --config examples/Caddyfile.static --pretty > examples/Caddyfile.static.json")
	}
}
