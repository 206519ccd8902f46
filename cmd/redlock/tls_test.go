//go:build unix

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumlock/redsync/internal/redistest"
)

// writeCert makes a certificate for name signed by parent (self-signed
// when parent is nil) and writes it and its key as PEM files in dir.
func writeCert(t *testing.T, dir, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, kind string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", keyDER)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func TestTLSWithClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", nil, nil)
	writeCert(t, dir, "server", ca, caKey)
	writeCert(t, dir, "client", ca, caKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	redistest.StartWithArgs(t, 1, "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", filepath.Join(dir, "server.crt"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"), "--tls-auth-clients", "yes")
	addrs := []string{"127.0.0.1:" + strconv.Itoa(port)}
	tlsFlags := []string{"-tls", "-cacert", filepath.Join(dir, "ca.crt"), "-cert", filepath.Join(dir, "client.crt"), "-key", filepath.Join(dir, "client.key")}

	p, code := runRedlock(t, dir, addrs, nil, append(append([]string{"run", "-name", "tls"}, tlsFlags...), shell("echo ran > ran")...)...)
	if code != 0 || !fileHas(filepath.Join(dir, "ran"), "ran") {
		t.Errorf("over TLS: exit status %d\n%s", code, &p.stderr)
	}
	// Without the client certificate the server refuses the handshake.
	p, code = runRedlock(t, dir, addrs, nil, append([]string{"run", "-name", "tls", "-tls", "-cacert", filepath.Join(dir, "ca.crt")}, shell("true")...)...)
	if code != exitUnreachable {
		t.Errorf("without a client certificate: exit status %d, want %d\n%s", code, exitUnreachable, &p.stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-cacert", filepath.Join(dir, "ca.crt")}, "need -tls"},
		{[]string{"-tls", "-cert", filepath.Join(dir, "client.crt")}, "-cert and -key go together"},
		{[]string{"-tls", "-cacert", filepath.Join(dir, "client.key")}, "holds no PEM certificate"},
		{[]string{"-tls", "-cacert", filepath.Join(dir, "missing.crt")}, "no such file"},
	} {
		p, code := runRedlock(t, dir, addrs, nil, append(append([]string{"run", "-name", "tls"}, c.args...), shell("true")...)...)
		if code != exitUsage || !strings.Contains(p.stderr.String(), c.want) {
			t.Errorf("%v: exit status %d, want %d and %q\n%s", c.args, code, exitUsage, c.want, &p.stderr)
		}
	}
}
