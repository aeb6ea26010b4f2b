package passhash

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// phpFixtures is run by the PHP CLI. It makes stored values with PHP's own
// password_hash, crypt, hash_hmac, hash_pbkdf2 and md5, the way each
// application does, for a set of awkward passwords (UTF-8, white space,
// 0xff bytes, 71/72/73 bytes and longer), and for each stored value gives
// PHP's verdict on a few candidate passwords: the right one and near
// misses. phpass and Drupal 7 have no PHP built-in; portable() is their
// algorithm (phpass 0.3 crypt_private, Drupal 7 _password_crypt) in PHP.
// Every string crosses as base64. Costs are the minimums, to stay fast.
const phpFixtures = `<?php
error_reporting(E_ALL);
set_error_handler(function ($no, $msg) { fwrite(STDERR, "PHP: $msg\n"); exit(2); });
if (!defined('PASSWORD_ARGON2ID')) { fwrite(STDERR, "PHP lacks PASSWORD_ARGON2ID\n"); exit(2); }
const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function enc64($in) {
	$out = ''; $n = strlen($in); $i = 0;
	do {
		$v = ord($in[$i++]); $out .= ITOA64[$v & 0x3f];
		if ($i < $n) $v |= ord($in[$i]) << 8;
		$out .= ITOA64[($v >> 6) & 0x3f];
		if ($i++ >= $n) break;
		if ($i < $n) $v |= ord($in[$i]) << 16;
		$out .= ITOA64[($v >> 12) & 0x3f];
		if ($i++ >= $n) break;
		$out .= ITOA64[($v >> 18) & 0x3f];
	} while ($i < $n);
	return $out;
}
function portable($algo, $pw, $setting, $len) {
	$count = 1 << strpos(ITOA64, $setting[3]);
	$salt = substr($setting, 4, 8);
	$h = hash($algo, $salt . $pw, true);
	do { $h = hash($algo, $h . $pw, true); } while (--$count);
	return substr(substr($setting, 0, 12) . enc64($h), 0, $len);
}
function salt($n, $alphabet = ITOA64) {
	$s = ''; for ($i = 0; $i < $n; $i++) $s .= $alphabet[random_int(0, strlen($alphabet) - 1)];
	return $s;
}
function bsalt() { return substr(password_hash('x', PASSWORD_BCRYPT, ['cost' => 4]), 7, 22); }
function wpPre($pw) { return base64_encode(hash_hmac('sha384', $pw, 'wp-sha384', true)); }
function nonul($s) { return str_replace("\0", "\1", $s); }

$pws = ['', 'a', 'password', 'pässwörd ünïcödé 密码', ' spaces around ', "tab\tand\nnewline",
	"'; DROP TABLE users; --", str_repeat('x', 71), str_repeat('y', 72), str_repeat('z', 73),
	str_repeat('long', 40), "\xff\xff\xa3", "\xff\xa3345", "\xff\xff\xff\x80abc\xff\x90",
	"\x80\x81\xfe\xff", nonul(random_bytes(12)), nonul(random_bytes(80))];
$alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
$a2 = ['memory_cost' => 64, 'time_cost' => 1, 'threads' => 1];

$cases = [];
function add($format, $note, $stored, $pw, $verdict) {
	global $cases;
	$cands = [$pw, $pw . 'x', ' ' . $pw, ''];
	if ($pw !== '') { $cands[] = substr($pw, 0, -1); $cands[] = strtoupper($pw); }
	if (strlen($pw) >= 72) { $cands[] = substr($pw, 0, 72) . 'tail'; $cands[] = substr($pw, 0, 71); }
	$out = [];
	foreach (array_unique($cands) as $c) $out[] = ['pw' => base64_encode($c), 'ok' => (bool)$verdict($c)];
	$cases[] = ['format' => $format, 'note' => $note, 'stored' => base64_encode($stored),
		'password' => base64_encode($pw), 'candidates' => $out];
}

foreach ($pws as $pw) {
	$h = password_hash($pw, PASSWORD_BCRYPT, ['cost' => 4]);
	add('bcrypt', 'password_hash', $h, $pw, fn($c) => password_verify($c, $h));
	foreach (['2a', '2b'] as $v) {
		$hv = crypt($pw, '$' . $v . '$04$' . bsalt());
		add('bcrypt', "crypt $v", $hv, $pw, fn($c) => hash_equals($hv, crypt($c, $hv)));
	}
	$ha = password_hash($pw, PASSWORD_ARGON2ID, $a2);
	add('argon2id', 'password_hash', $ha, $pw, fn($c) => password_verify($c, $ha));
	$hi = password_hash($pw, PASSWORD_ARGON2I, $a2);
	add('argon2i', 'password_hash', $hi, $pw, fn($c) => password_verify($c, $hi));
	$hw = '$wp' . password_hash(wpPre($pw), PASSWORD_BCRYPT, ['cost' => 4]);
	add('wordpress', 'wp_hash_password', $hw, $pw, fn($c) => password_verify(wpPre($c), substr($hw, 3)));
	foreach (['$P$', '$H$'] as $id) {
		$hp = portable('md5', $pw, $id . ITOA64[7] . salt(8), 34);
		add('phpass', $id, $hp, $pw, fn($c) => portable('md5', $c, $hp, 34) === $hp);
	}
	$hs = portable('sha512', $pw, '$S$' . ITOA64[7] . salt(8), 55);
	add('drupal7', '$S$', $hs, $pw, fn($c) => portable('sha512', $c, $hs, 55) === $hs);
	$hu = 'U' . portable('sha512', md5($pw), '$S$' . ITOA64[7] . salt(8), 55);
	add('drupal7', 'U$S$', $hu, $pw, fn($c) => 'U' . portable('sha512', md5($c), substr($hu, 1), 55) === $hu);
	foreach (['6' => 'sha512crypt', '5' => 'sha256crypt'] as $id => $f) {
		$hr = crypt($pw, '$' . $id . '$rounds=1000$' . salt(16) . '$');
		add($f, 'rounds=1000', $hr, $pw, fn($c) => hash_equals($hr, crypt($c, $hr)));
	}
	$hm = crypt($pw, '$1$' . salt(8) . '$');
	add('md5crypt', '$1$', $hm, $pw, fn($c) => hash_equals($hm, crypt($c, $hm)));
	foreach (['sha256' => 32, 'sha1' => 20] as $algo => $len) {
		$s = salt(22, $alnum);
		$hd = "pbkdf2_$algo\$1000\$$s\$" . base64_encode(hash_pbkdf2($algo, $pw, $s, 1000, $len, true));
		add('django', "pbkdf2_$algo", $hd, $pw,
			fn($c) => hash_equals($hd, "pbkdf2_$algo\$1000\$$s\$" . base64_encode(hash_pbkdf2($algo, $c, $s, 1000, $len, true))));
	}
	$hda = 'argon2' . password_hash($pw, PASSWORD_ARGON2ID, $a2);
	add('django', 'argon2', $hda, $pw, fn($c) => password_verify($c, substr($hda, 6)));
	$hdb = 'bcrypt_sha256$' . str_replace('$2y$', '$2b$', password_hash(hash('sha256', $pw), PASSWORD_BCRYPT, ['cost' => 4]));
	add('django', 'bcrypt_sha256', $hdb, $pw, fn($c) => password_verify(hash('sha256', $c), substr($hdb, 14)));
	$hdc = 'bcrypt$' . str_replace('$2y$', '$2b$', password_hash($pw, PASSWORD_BCRYPT, ['cost' => 4]));
	add('django', 'bcrypt', $hdc, $pw, fn($c) => password_verify($c, substr($hdc, 7)));
	$sj = salt(32, $alnum);
	$hj = md5($pw . $sj) . ':' . $sj;
	add('md5_salt_after', 'joomla', $hj, $pw, fn($c) => hash_equals($hj, md5($c . $sj) . ':' . $sj));
	$sw = salt(5, $alnum . '!#%&()*+,-./;<=>?@[]^_{|}~');
	$hb = md5($sw . $pw) . ':' . $sw;
	add('md5_salt_before', 'whmcs', $hb, $pw, fn($c) => hash_equals($hb, md5($sw . $c) . ':' . $sw));
	add('md5', 'lower', md5($pw), $pw, fn($c) => hash_equals(md5($pw), md5($c)));
	add('md5', 'upper', strtoupper(md5($pw)), $pw, fn($c) => hash_equals(md5($pw), md5($c)));
	add('sha1', 'lower', sha1($pw), $pw, fn($c) => hash_equals(sha1($pw), sha1($c)));
	add('sha1', 'upper', strtoupper(sha1($pw)), $pw, fn($c) => hash_equals(sha1($pw), sha1($c)));
	if ($pw !== '') add('plain', 'plain', $pw, $pw, fn($c) => hash_equals($pw, $c));
}
// Default costs once: sha-crypt without rounds= (5000), bcrypt at PHP's default.
$h5 = crypt('default cost', '$6$' . salt(16) . '$');
add('sha512crypt', 'default rounds', $h5, 'default cost', fn($c) => hash_equals($h5, crypt($c, $h5)));
$h6 = crypt('default cost', '$5$' . salt(16) . '$');
add('sha256crypt', 'default rounds', $h6, 'default cost', fn($c) => hash_equals($h6, crypt($c, $h6)));
echo json_encode($cases);
`

type phpCase struct {
	Format     Format
	Note       string
	Stored     string
	Password   string
	Candidates []struct {
		Pw string
		OK bool
	}
}

// requirePHP returns the PHP CLI, or skips (fails under CI=true, where it
// must be installed).
func requirePHP(t *testing.T) string {
	t.Helper()
	php, err := exec.LookPath("php")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("php not found, and CI=true: the CI script must apt-get install php-cli")
		}
		t.Skip("php not found: apt-get install php-cli to run the PHP cross-checks")
	}
	return php
}

func TestVerifyAgreesWithPHP(t *testing.T) {
	php := requirePHP(t)
	cmd := exec.Command(php, "-n", "-d", "memory_limit=512M")
	cmd.Stdin = strings.NewReader(phpFixtures)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("php: %v\n%s", err, stderr.String())
	}
	var cases []phpCase
	if err := json.Unmarshal(out, &cases); err != nil {
		t.Fatalf("php output: %v", err)
	}
	t.Logf("%d stored values from PHP in %v", len(cases), time.Since(start).Round(time.Millisecond))
	if len(cases) < 400 {
		t.Fatalf("PHP made only %d stored values", len(cases))
	}
	covered := map[Format]bool{}
	for _, c := range cases {
		stored, password := unb64(t, c.Stored), unb64(t, c.Password)
		covered[c.Format] = true
		sawRight := false
		for _, cand := range c.Candidates {
			pw := unb64(t, cand.Pw)
			if pw == password {
				if !cand.OK {
					t.Fatalf("%s %s: PHP rejects its own password %q", c.Format, c.Note, pw)
				}
				sawRight = true
			}
			ok, f, err := Verify(stored, pw, []Format{c.Format})
			if err != nil || f != c.Format || ok != cand.OK {
				t.Errorf("%s (%s) stored %q, password %q: Verify = %v, %q, %v; PHP says %v",
					c.Format, c.Note, stored, pw, ok, f, err, cand.OK)
			}
		}
		if !sawRight {
			t.Fatalf("%s %s: the right password is not among the candidates", c.Format, c.Note)
		}
	}
	for _, f := range Formats() {
		if !covered[f] {
			t.Errorf("no PHP fixture for %s", f)
		}
	}
}

func unb64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
