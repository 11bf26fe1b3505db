package runtimetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/wsmatrix/wsmatrix/api"
)

// tlsCases run for runtimes that serve TLS (Config.TLS).
func tlsCases() []testCase {
	return []testCase{
		{name: "request/tls_state_before_and_after_waiting", run: func(t *testing.T, k *kit) {
			cert, pool := SelfSignedCert(t)
			o := testOptions()
			o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			s := k.serve(o, func(r *api.Router) {
				r.Handle("/t", func(c api.Conn) {
					first := c.Request().TLS != nil
					c.OnMessage(func(m api.Message) { // the request is packed once the handler returned
						c.SendText(fmt.Sprintf("%v %v", first, c.Request().TLS != nil))
					})
				})
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			d := ws.Dialer{TLSConfig: &tls.Config{RootCAs: pool}}
			nc, _, _, err := d.Dial(ctx, "wss://"+s.addr+"/t")
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			if err := wsutil.WriteClientText(nc, []byte("x")); err != nil {
				t.Fatal(err)
			}
			p, err := wsutil.ReadServerText(nc)
			if err != nil {
				t.Fatal(err)
			}
			if string(p) != "true true" {
				t.Fatalf("TLS state at the handler's start and after it waited: %q, want both set", p)
			}
		}},
	}
}

// SelfSignedCert makes a certificate for 127.0.0.1, valid for an hour,
// and the pool that trusts it: for tests that serve TLS.
func SelfSignedCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "runtimetest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
