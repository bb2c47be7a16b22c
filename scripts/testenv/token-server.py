#!/usr/bin/python3
# Test-only token server for the Docker registry Bearer flow (distribution "token" auth): checks
# Basic credentials on /token and issues scoped RS256 JWTs. Python standard library only (no
# python3-cryptography needed). Never expose it beyond loopback; it holds test credentials.
#
# Usage: token-server.py CONFIG.json   (written by scripts/setup-test-env.sh)
# Config keys: listen, port, tls_cert, tls_key (HTTPS; omit both for plain HTTP), sign_key (PEM
# RSA key), sign_cert (PEM certificate of that key; the registry's rootcertbundle), issuer,
# service, ttl (seconds), log (file), public_prefix, users {name: {password, actions}}.
#
# Access policy: a known user gets the requested repository actions it is allowed (its
# "actions") on every repository, and registry:catalog:*; anonymous gets "pull" on repositories
# under public_prefix and nothing elsewhere (a token with empty access, as Docker Hub does, so
# the registry answers 401 insufficient_scope). Wrong credentials get 401 from /token itself.
#   GET  /token?service=S&scope=repository:NAME:pull,push[&scope=…][&offline_token=true]
#   POST /token  (OAuth2 form: grant_type=password|refresh_token, username, password,
#                 refresh_token, service, scope (space separated), client_id, access_type)
#   GET  /healthz
# Every request is logged as one line (account, scopes, granted access, status; never secrets),
# so tests can count token requests (e.g. to check that clients cache tokens).
import base64
import datetime
import hashlib
import hmac
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse

# --------------------------------------------------------------- RSA PKCS#1 v1.5 signing (RS256)


def _der(buf, i):
    """Returns (tag, content_start, content_end) of the DER element at offset i."""
    tag, length = buf[i], buf[i + 1]
    i += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[i:i + n], "big")
        i += n
    return tag, i, i + length


def _children(buf, start, end):
    out, i = [], start
    while i < end:
        tag, s, e = _der(buf, i)
        out.append((tag, s, e))
        i = e
    return out


def load_rsa_key(pem_path):
    """Reads a PEM RSA private key (PKCS#8 'PRIVATE KEY' or PKCS#1 'RSA PRIVATE KEY')."""
    with open(pem_path) as f:
        text = f.read()
    b64 = "".join(l for l in text.splitlines() if l and not l.startswith("-----"))
    der = base64.b64decode(b64)
    _, s, e = _der(der, 0)
    items = _children(der, s, e)
    if "BEGIN PRIVATE KEY" in text:  # PKCS#8: version, algorithm, OCTET STRING(PKCS#1)
        _, os_, oe = items[2]
        der = der[os_:oe]
        _, s, e = _der(der, 0)
        items = _children(der, s, e)
    ints = [int.from_bytes(der[s:e], "big") for _, s, e in items]
    n, e_, d, p, q, dp, dq, qinv = ints[1:9]
    return {"n": n, "e": e_, "d": d, "p": p, "q": q, "dp": dp, "dq": dq, "qinv": qinv}


SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_sign(key, message):
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 section 8.2), using the CRT for speed."""
    k = (key["n"].bit_length() + 7) // 8
    t = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    m = int.from_bytes(em, "big")
    m1 = pow(m, key["dp"], key["p"])
    m2 = pow(m, key["dq"], key["q"])
    h = (key["qinv"] * (m1 - m2)) % key["p"]
    s = m2 + h * key["q"]
    if pow(s, key["e"], key["n"]) != m:  # never hand out a bad signature
        raise RuntimeError("RSA self-check failed")
    return s.to_bytes(k, "big")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pem_cert_der(path):
    with open(path) as f:
        text = f.read()
    body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


# --------------------------------------------------------------- policy and tokens


class Issuer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.key = load_rsa_key(cfg["sign_key"])
        self.x5c = [base64.b64encode(pem_cert_der(cfg["sign_cert"])).decode()]
        self.refresh = {}  # refresh token -> account
        self.lock = threading.Lock()

    def check_user(self, user, password):
        u = self.cfg["users"].get(user)
        return u is not None and hmac.compare_digest(u["password"].encode(), password.encode())

    def grant(self, account, scopes):
        """Returns the access list for the requested scopes ([] entries are dropped)."""
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3:
                raise ValueError("malformed scope %r (want type:name:actions)" % scope)
            rtype, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            if rtype.startswith("repository"):  # also repository(plugin)
                if account:
                    allowed = set(self.cfg["users"][account]["actions"])
                    if "*" in actions:
                        actions = list(allowed)
                else:
                    pub = name.startswith(self.cfg.get("public_prefix", "public/"))
                    allowed = {"pull"} if pub else set()
                got = sorted(a for a in set(actions) if a in allowed)
            elif rtype == "registry" and name == "catalog":
                got = ["*"] if account else []
            else:
                got = []
            if got:
                access.append({"type": rtype, "name": name, "actions": got})
        return access

    def token(self, account, access):
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        claims = {"iss": self.cfg["issuer"], "sub": account, "aud": self.cfg["service"],
                  "exp": now + int(self.cfg["ttl"]), "nbf": now - 1, "iat": now,
                  "jti": secrets.token_hex(12), "access": access}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode()))
        return signing_input + "." + b64url(rs256_sign(self.key, signing_input.encode()))

    def new_refresh_token(self, account):
        tok = secrets.token_urlsafe(24)
        with self.lock:
            self.refresh[tok] = account
        return tok


# --------------------------------------------------------------- HTTP


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "rbox-test-token-server/1"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds; a stalled client only ties up its own thread

    def setup(self):
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, TimeoutError):
            pass  # a client that fails the handshake or hangs up is not our problem

    def log_message(self, fmt, *args):  # the default logs to stderr per request; we log below
        pass

    def _log(self, status, account, scopes, access, note=""):
        line = "%s %s %s %s account=%s scopes=%s granted=%s status=%d%s\n" % (
            datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            self.client_address[0], self.command, self.path.split("?")[0], account or "-",
            json.dumps(scopes), json.dumps(access, separators=(",", ":")), status,
            " " + note if note else "")
        with self.server.log_lock:
            self.server.log.write(line)
            self.server.log.flush()

    def _send(self, status, body, extra=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, code, message, account, scopes):
        extra = {"WWW-Authenticate": 'Basic realm="rbox-test-token"'} if status == 401 else {}
        self._send(status, {"errors": [{"code": code, "message": message}],
                            "error": code.lower(), "error_description": message}, extra)
        self._log(status, account, scopes, [], code)

    def _basic(self):
        """Returns (account or None, ok). ok is False when credentials were sent but are bad."""
        h = self.headers.get("Authorization", "")
        if not h:
            return None, True
        if not h.lower().startswith("basic "):
            return None, False
        try:
            user, _, password = base64.b64decode(h[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None, False
        return (user, True) if self.server.issuer.check_user(user, password) else (user, False)

    def _issue(self, account, scopes, service, oauth, offline):
        issuer = self.server.issuer
        if service and service != issuer.cfg["service"]:
            return self._error(400, "INVALID_SERVICE", "unknown service %r" % service, account,
                               scopes)
        try:
            access = issuer.grant(account, scopes)
        except ValueError as e:
            return self._error(400, "INVALID_SCOPE", str(e), account, scopes)
        tok = issuer.token(account or "", access)
        issued = datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"access_token": tok, "expires_in": int(issuer.cfg["ttl"]), "issued_at": issued}
        if not oauth:
            body["token"] = tok
        else:
            body["scope"] = " ".join(scopes)
        if offline and account:
            body["refresh_token"] = issuer.new_refresh_token(account)
        self._send(200, body)
        self._log(200, account, scopes, access)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            return self._send(200, {"status": "ok"})
        if url.path != "/token":
            return self._error(404, "NOT_FOUND", "no such endpoint", None, [])
        q = urllib.parse.parse_qs(url.query)
        scopes = [s for v in q.get("scope", []) for s in v.split(" ") if s]
        account, ok = self._basic()
        if not ok:
            return self._error(401, "UNAUTHORIZED", "invalid username or password", account,
                               scopes)
        self._issue(account, scopes, q.get("service", [""])[0], False,
                    q.get("offline_token", [""])[0] == "true")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self._error(404, "NOT_FOUND", "no such endpoint", None, [])
        length = int(self.headers.get("Content-Length", "0") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(errors="replace"))
        get = lambda k: form.get(k, [""])[0]  # noqa: E731
        scopes = [s for s in get("scope").split(" ") if s]
        grant = get("grant_type")
        if grant == "password":
            account = get("username")
            if not self.server.issuer.check_user(account, get("password")):
                return self._error(401, "UNAUTHORIZED", "invalid username or password",
                                   account, scopes)
        elif grant == "refresh_token":
            with self.server.issuer.lock:
                account = self.server.issuer.refresh.get(get("refresh_token"))
            if account is None:
                return self._error(401, "UNAUTHORIZED", "invalid refresh token", None, scopes)
        else:
            return self._error(400, "UNSUPPORTED_GRANT_TYPE", "grant_type %r" % grant, None,
                               scopes)
        self._issue(account, scopes, get("service"), True, get("access_type") == "offline")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: token-server.py CONFIG.json")
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    srv = Server((cfg.get("listen", "127.0.0.1"), int(cfg["port"])), Handler)
    srv.issuer = Issuer(cfg)
    srv.issuer.token("selftest", [])  # fail at start, not on the first request
    srv.log = open(cfg["log"], "a")
    srv.log_lock = threading.Lock()
    if cfg.get("tls_cert"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cfg["tls_cert"], cfg["tls_key"])
        # Handshake in the handler thread, so one slow client cannot block accept().
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    print("token-server: listening on %s:%s (pid %d)" % (cfg.get("listen", "127.0.0.1"),
                                                         cfg["port"], os.getpid()), flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
