package loginsharecmd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// loadEnvFile puts the variables of an environment file into the process
// environment the way `caddy run --envfile` does, so that {$NAME} and
// {env.NAME} resolve as they will under the service manager: a variable
// already set wins over the file. Caddy's own loader is not exported; this
// follows the same rules (TestEnvFileAsCaddyReadsIt compares the two).
func loadEnvFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading environment file: %v", err)
	}
	defer f.Close()
	vars, err := parseEnvFile(f)
	if err != nil {
		return fmt.Errorf("parsing environment file %s: %v", path, err)
	}
	for _, kv := range vars {
		if _, set := os.LookupEnv(kv[0]); set {
			continue
		}
		if err := os.Setenv(kv[0], kv[1]); err != nil {
			return fmt.Errorf("setting environment variable %s: %v", kv[0], err)
		}
	}
	return nil
}

// parseEnvFile reads KEY=VALUE lines, in order (a later line for the same key
// wins, as in Caddy's map). The rules, as Caddy's parser has them: blank
// lines and lines starting with # are skipped; an "export " prefix on the key
// is ignored; the key must be non-empty and without spaces; the value must
// not start with white space; a # ends the value (even inside quotes), and
// white space before it is dropped; a value starting with a quote runs, over
// several lines if need be, to a line ending in that quote (\" keeps a quote
// inside), and loses its opening and closing quote. No expansion.
func parseEnvFile(r io.Reader) ([][2]string, error) {
	var out [][2]string
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d is not KEY=VALUE", n)
		}
		key = strings.TrimPrefix(key, "export ")
		switch {
		case key == "":
			return nil, fmt.Errorf("line %d has an empty key", n)
		case strings.Contains(key, " "):
			return nil, fmt.Errorf("line %d: the key %q contains white space", n, key)
		case strings.HasPrefix(val, " "), strings.HasPrefix(val, "\t"):
			return nil, fmt.Errorf("line %d: white space before the value", n)
		}
		if i := strings.IndexByte(val, '#'); i >= 0 {
			val = strings.TrimRight(val[:i], " \t")
		}
		if val != "" && (val[0] == '"' || val[0] == '\'') {
			q := val[:1]
			// The quoted value ends on the first line (this one included)
			// that ends in an unescaped quote.
			for !strings.HasSuffix(line, q) || strings.HasSuffix(line, `\`+q) {
				val = strings.ReplaceAll(val, `\`+q, q)
				if !sc.Scan() {
					break
				}
				n++
				line = strings.ReplaceAll(sc.Text(), `\`+q, q)
				val += "\n" + line
			}
			val = strings.TrimSuffix(strings.TrimPrefix(val, q), q)
		}
		out = append(out, [2]string{key, val})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
