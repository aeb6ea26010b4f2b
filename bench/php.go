package main

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kayako-loginshare/caddy-loginshare/internal/slapdtest"
)

//go:embed naive/index.php
var naiveScript []byte

// findFPM returns Debian's php-fpm binary (php-fpm8.2 on Debian 12).
func findFPM() string {
	if p, err := exec.LookPath("php-fpm"); err == nil {
		return p
	}
	for _, pattern := range []string{"/usr/sbin/php-fpm*", "/usr/bin/php-fpm*", "/usr/local/sbin/php-fpm*"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			return m[len(m)-1]
		}
	}
	return ""
}

// startFPM writes the naive script and a private pool under root and runs
// php-fpm in the foreground: workers is the pool size (pm = static).
func startFPM(fpm, root string, dir *slapdtest.Server, workers int) (phpRoot string, port int, err error) {
	phpRoot = filepath.Join(root, "php")
	if err := os.MkdirAll(phpRoot, 0o700); err != nil {
		return "", 0, err
	}
	if err := os.WriteFile(filepath.Join(phpRoot, "index.php"), naiveScript, 0o600); err != nil {
		return "", 0, err
	}
	if port, err = freePort(); err != nil {
		return "", 0, err
	}
	// As root, php-fpm needs -R to let its workers run as root (the files
	// here are root's); as anyone else it runs them as that user.
	user, args := "", []string{"-F", "-y", filepath.Join(root, "php-fpm.conf")}
	if os.Geteuid() == 0 {
		user = "user = root\ngroup = root\n"
		args = append(args, "-R")
	}
	conf := fmt.Sprintf(`[global]
pid = %[1]s/php-fpm.pid
error_log = %[1]s/php-fpm.log
daemonize = no

[loginshare]
%[2]slisten = 127.0.0.1:%[3]d
listen.allowed_clients = 127.0.0.1
pm = static
pm.max_children = %[4]d
clear_env = yes
catch_workers_output = yes
env[BENCH_LDAP_URL] = "%[5]s"
env[BENCH_LDAP_CA] = "%[6]s"
env[BENCH_BIND_DN] = "%[7]s"
env[BENCH_BIND_PASSWORD] = "%[8]s"
env[BENCH_BASE_DN] = "%[9]s"
`, root, user, port, workers, dir.LDAPSURL, dir.CAFile, dir.BindDN, dir.BindPassword, dir.BaseDN)
	for _, v := range []string{dir.LDAPSURL, dir.CAFile, dir.BindDN, dir.BindPassword, dir.BaseDN} {
		if strings.ContainsAny(v, "\"\n$") {
			return "", 0, fmt.Errorf("%q cannot be quoted in php-fpm.conf", v)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "php-fpm.conf"), []byte(conf), 0o600); err != nil {
		return "", 0, err
	}
	p, err := startProc("php-fpm", filepath.Join(root, "php-fpm.out"), os.Environ(), fpm, args...)
	if err != nil {
		return "", 0, err
	}
	if err := waitPort(p, port, 15*time.Second); err != nil {
		return "", 0, fmt.Errorf("%w\n%s%s", err, tail(filepath.Join(root, "php-fpm.out")), tail(filepath.Join(root, "php-fpm.log")))
	}
	return phpRoot, port, nil
}
