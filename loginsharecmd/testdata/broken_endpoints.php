<?php
// broken_endpoints.php: a router for PHP's built-in web server
// (php -S 127.0.0.1:PORT broken_endpoints.php) that plays LoginShare
// endpoints, working and broken, the way PHP scripts answer Kayako. The Go
// tests point `caddy loginshare check` at it.
//
// Every request is appended as one JSON line to the file named by the
// environment variable LOGINSHARE_REQUEST_LOG: method, URI, headers, the raw
// body, and the body rebuilt from $_POST with PHP's urlencode() in Kayako's
// field order (so a test can show the two are the same bytes).
//
// Paths (anything else is a 404 with an empty body):
//   /user-ok /staff-ok  a valid document; /user-ok answers for password
//                       "s3cret" only and refuses any other (result 0)
//   /empty              200 with no body
//   /not-xml            an HTML page
//   /result-2           <result>2</result>
//   /staff-no-signature a staff document without <signature>
//   /no-valid-email     a user document whose addresses Kayako rejects
//   /empty-title        a user document with an empty <usergroup>
//   /empty-fullname     a user document with an empty <fullname>
//   /redirect           302 to the https:// URL, empty body (as a web
//                       server's http->https redirect)
//   /error-500          HTTP 500 with a valid user document
//   /echo               a debugging script: prints the POST fields
//   /slow               sleeps 3 s, then a valid document

declare(strict_types=1);

$order = ['username', 'password', 'ipaddress', 'interface'];
$rebuilt = [];
foreach ($order as $k) {
    if (array_key_exists($k, $_POST)) {
        $rebuilt[] = $k . '=' . urlencode((string)$_POST[$k]);
    }
}
$record = [
    'method' => $_SERVER['REQUEST_METHOD'],
    'uri' => $_SERVER['REQUEST_URI'],
    'headers' => getallheaders(),
    'body' => file_get_contents('php://input'),
    'rebuilt' => implode('&', $rebuilt),
];
$log = getenv('LOGINSHARE_REQUEST_LOG');
if ($log !== false && $log !== '') {
    file_put_contents($log, json_encode($record, JSON_UNESCAPED_SLASHES) . "\n", FILE_APPEND | LOCK_EX);
}

$user = function (string $group, string $name, array $emails): string {
    $e = '';
    foreach ($emails as $a) {
        $e .= '<email>' . htmlspecialchars($a, ENT_XML1) . '</email>';
    }
    return '<?xml version="1.0" encoding="UTF-8"?>' . "\n<loginshare><result>1</result><user>"
        . '<usergroup>' . htmlspecialchars($group, ENT_XML1) . '</usergroup>'
        . '<fullname>' . htmlspecialchars($name, ENT_XML1) . '</fullname>'
        . '<designation>Engineer</designation><emails>' . $e . '</emails><phone>+1 555 0100</phone>'
        . "</user></loginshare>\n";
};
$staff = '<?xml version="1.0" encoding="UTF-8"?>' . "\n<loginshare><result>1</result><staff>"
    . '<team>Support</team><firstname>Jane</firstname><lastname>Doe</lastname><designation>Engineer</designation>'
    . '<email>Jane.Doe@Example.com</email><mobilenumber></mobilenumber><signature></signature>'
    . "</staff></loginshare>\n";

header('Content-Type: text/xml; charset=utf-8');
switch (parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH)) {
    case '/user-ok':
        if (($_POST['password'] ?? '') !== 's3cret') {
            echo '<?xml version="1.0" encoding="UTF-8"?>' . "\n<loginshare><result>0</result><message>Invalid Username or Password</message></loginshare>\n";
            break;
        }
        echo $user('Registered', 'Jane Doe', ['Jane.Doe@Example.com', 'not an email']);
        break;
    case '/staff-ok':
        echo $staff;
        break;
    case '/empty':
        break;
    case '/not-xml':
        header('Content-Type: text/html; charset=utf-8');
        echo "<!DOCTYPE html>\n<html><head><title>Login</title></head><body><form method=post><input name=username></form></body></html>\n";
        break;
    case '/result-2':
        echo "<?xml version=\"1.0\"?>\n<loginshare><result>2</result><message>LDAP bind failed</message></loginshare>\n";
        break;
    case '/staff-no-signature':
        echo str_replace('<signature></signature>', '', $staff);
        break;
    case '/no-valid-email':
        echo $user('Registered', 'Jane Doe', ['jane doe@example.com', ' jane@example.com', 'zoë@example.com']);
        break;
    case '/empty-title':
        echo $user('', 'Jane Doe', ['jane@example.com']);
        break;
    case '/empty-fullname':
        echo $user('Registered', '', ['jane@example.com']);
        break;
    case '/redirect':
        header('Content-Type: text/html');
        header('Location: https://' . $_SERVER['HTTP_HOST'] . $_SERVER['REQUEST_URI'], true, 302);
        break;
    case '/error-500':
        http_response_code(500);
        echo $user('Registered', 'Jane Doe', ['jane@example.com']);
        break;
    case '/echo':
        header('Content-Type: text/plain');
        echo "DEBUG: received\n";
        print_r($_POST);
        echo 'raw: ', file_get_contents('php://input'), "\n";
        break;
    case '/slow':
        sleep(3);
        echo $user('Registered', 'Jane Doe', ['jane@example.com']);
        break;
    default:
        http_response_code(404);
        header('Content-Type: text/plain');
}
