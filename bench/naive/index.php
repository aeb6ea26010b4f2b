<?php
// The "naive" peer of the benchmark harness: a LoginShare script as
// helpdesks typically write it. Every request connects to the directory
// (TLS handshake included), binds as the service account, searches the
// person and binds as them; nothing is kept between requests. The harness
// serves it with php-fpm behind Caddy's php_fastcgi and passes the
// directory settings in the pool's environment.
header('Content-Type: text/xml; charset=utf-8');

function answer_failure($message)
{
    echo "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<loginshare><result>0</result><message>",
        htmlspecialchars($message, ENT_XML1), "</message></loginshare>\n";
    exit;
}

$username = $_POST['username'] ?? '';
$password = $_POST['password'] ?? '';
if ($username === '' || trim($password) === '') {
    answer_failure('Invalid username or password');
}

ldap_set_option(null, LDAP_OPT_X_TLS_CACERTFILE, getenv('BENCH_LDAP_CA'));
ldap_set_option(null, LDAP_OPT_X_TLS_REQUIRE_CERT, LDAP_OPT_X_TLS_DEMAND);
$ld = ldap_connect(getenv('BENCH_LDAP_URL'));
ldap_set_option($ld, LDAP_OPT_PROTOCOL_VERSION, 3);
ldap_set_option($ld, LDAP_OPT_REFERRALS, 0);
ldap_set_option($ld, LDAP_OPT_NETWORK_TIMEOUT, 3);

if (!@ldap_bind($ld, getenv('BENCH_BIND_DN'), getenv('BENCH_BIND_PASSWORD'))) {
    answer_failure('Authentication service unavailable');
}
$filter = '(&(objectClass=inetOrgPerson)(uid=' . ldap_escape($username, '', LDAP_ESCAPE_FILTER) . '))';
$sr = @ldap_search($ld, getenv('BENCH_BASE_DN'), $filter, ['cn', 'givenName', 'sn', 'mail', 'telephoneNumber', 'title'], 0, 2);
if ($sr === false) {
    answer_failure('Authentication service unavailable');
}
$entries = ldap_get_entries($ld, $sr);
if ($entries['count'] !== 1) {
    answer_failure('Invalid username or password');
}
$e = $entries[0];
if (!@ldap_bind($ld, $e['dn'], $password)) {
    answer_failure('Invalid username or password');
}
ldap_unbind($ld);

$x = fn($s) => htmlspecialchars($s, ENT_XML1);
echo "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<loginshare><result>1</result><user>",
    "<usergroup>Registered</usergroup>",
    "<fullname>", $x($e['cn'][0] ?? $username), "</fullname>",
    "<designation>", $x($e['title'][0] ?? ''), "</designation>",
    "<emails><email>", $x($e['mail'][0] ?? ''), "</email></emails>",
    "<phone>", $x($e['telephonenumber'][0] ?? ''), "</phone>",
    "</user></loginshare>\n";
