package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// nodeIP is the real node's bridge address (scripts/node.sh): pods reach the API server there
// (the `kubernetes` Service's endpoint), so the serving certificate names it.
const nodeIP = "10.245.0.1"

// pki is the set of files the control plane needs: a CA, the API server's serving certificate,
// an admin client certificate (group system:masters), the service-account signing key pair, and
// for the aggregation layer (metrics-server behind metrics.k8s.io) a front-proxy CA with the
// client certificate the API server proxies with.
type pki struct {
	dir string
}

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

// ensure creates whatever is missing. Existing files are kept, so a restart is fast and an
// existing kubeconfig stays valid.
func (p pki) ensure() error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if exists(p.path("ca.crt")) && exists(p.path("apiserver.crt")) && exists(p.path("admin.crt")) && exists(p.path("sa.key")) &&
		exists(p.path("front-proxy-client.crt")) && certHasIP(p.path("apiserver.crt"), nodeIP) {
		return nil
	}
	now := time.Now().Add(-time.Hour)
	caCert, caKey, err := p.newCA("ca", "emporium-local-ca", now)
	if err != nil {
		return err
	}
	// Aggregated API servers trust request headers only from clients of this second CA, so no
	// client certificate of the main CA can claim another user through them.
	proxyCert, proxyKey, err := p.newCA("front-proxy-ca", "emporium-front-proxy-ca", now)
	if err != nil {
		return err
	}

	leaf := func(name string, subject pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP) error {
		return p.leaf(caCert, caKey, name, subject, usage, dns, ips, now)
	}
	if err := leaf("apiserver", pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1"), net.ParseIP("10.0.0.1"), net.ParseIP("10.96.0.1"), net.ParseIP(nodeIP)}); err != nil {
		return err
	}
	if err := leaf("admin", pkix.Name{CommonName: "emporium-admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth, nil, nil); err != nil {
		return err
	}
	if err := p.leaf(proxyCert, proxyKey, "front-proxy-client", pkix.Name{CommonName: "front-proxy-client"}, x509.ExtKeyUsageClientAuth, nil, nil, now); err != nil {
		return err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(p.path("sa.pub"), "PUBLIC KEY", pub); err != nil {
		return err
	}
	return writePEM(p.path("sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(saKey))
}

// newCA writes <name>.crt and <name>.key: a self-signed CA valid for ten years from now.
func (p pki) newCA(name, commonName string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now,
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	if err := writePEM(p.path(name+".crt"), "CERTIFICATE", der); err != nil {
		return nil, nil, err
	}
	return cert, key, writeKey(p.path(name+".key"), key)
}

// leaf writes <name>.crt and <name>.key: a certificate signed by ca, valid for five years.
func (p pki) leaf(ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, subject pkix.Name, usage x509.ExtKeyUsage, dns []string, ips []net.IP, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    now,
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := writePEM(p.path(name+".crt"), "CERTIFICATE", der); err != nil {
		return err
	}
	return writeKey(p.path(name+".key"), key)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

func writePEM(path, kind string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key for %s: %w", path, err)
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// certHasIP says whether the PEM certificate at path names ip; certificates made before the
// real node existed lack its address and are made anew.
func certHasIP(path, ip string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return false
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return false
	}
	want := net.ParseIP(ip)
	for _, have := range cert.IPAddresses {
		if have.Equal(want) {
			return true
		}
	}
	return false
}
