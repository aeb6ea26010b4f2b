package passhash

import "testing"

func TestSmoke(t *testing.T) {
	for _, c := range []struct{ f Format; s, p string }{
		{Phpass, "$P$9IQRaTwmfeRo7ud9Fh4E2PdI0S3r.L0", "test12345"},
		{WordPress, "$wp$2y$12$iWN5xRwDE7i9R5jVJvCyqOxS1CNnwUggQaF8O2W9Bg8TuXQz.ngrS", "grimoire-test-123"},
		{Bcrypt, "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
		{Bcrypt, "$2a$05$/OK.fbVrR/bpIqNJ5ianF.nqd1wy.pTMdcvrRWxyiGL2eMz.2a85.", "\xff\xff\xa3"},
		{Bcrypt, "$2y$05$/OK.fbVrR/bpIqNJ5ianF.CE5elHaaO4EbggVDjb8P19RukzXSM3e", "\xff\xff\xa3"},
		{SHA512Crypt, "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.", "Hello world!"},
		{SHA256Crypt, "$5$rounds=10$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC", "the minimum number is still observed"},
		{SHA256Crypt, "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5", "Hello world!"},
		{MD5Crypt, "$1$abcd0123$9Qcg8DyviekV3tDGMZynJ1", "Xy01@#\x01\x02\x80\x7f\xff\r\n\x81\t !"},
		{Drupal7, "$S$5TOxWPdvJRs0P/xZBdrrPlGgzViOS0drHu3jaIjitesfttrp18bk", "valid password"},
		{Drupal7, "U$S$5vNHDQyLqCTvsYBLWBUWXJWhA0m3DTpBh04acFEOGB.bKBclhKgo", "valid password"},
		{Django, "pbkdf2_sha1$390000$seasalt2$aDapRanzW8aHTz97v2TcfHzWD+I=", "lètmein"},
		{Django, "scrypt$16384$seasalt$8$1$Qj3+9PPyRjSJIebHnG81TMjsqtaIGxNQG/aEB/NYafTJ7tibgfYz71m0ldQESkXFRkdVCBhhY8mx7rQwite/Pw==", "lètmein"},
		{Django, "argon2$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YC9+jJCrQhs5R6db7LlN8Q", "secret"},
		{Argon2id, "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc", "password"},
		{MD5SaltAfter, "3d83c8e717ff0e7ecfe187f088d69954:343141", "hashcat"},
		{MD5SaltBefore, "57ab8499d08c59a7211c77f557bf9425:4247", "hashcat"},
	} {
		ok, f, err := Verify(c.s, c.p, []Format{c.f})
		if !ok || err != nil || f != c.f {
			t.Errorf("%s %q: ok=%v f=%v err=%v", c.f, c.s, ok, f, err)
		}
	}
}
