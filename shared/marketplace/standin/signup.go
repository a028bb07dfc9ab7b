package standin

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/fault"
	"github.com/golang-jwt/jwt/v5"
)

// CertPath is the path of the certificates that sign Marketplace sign-up
// tokens, on www.googleapis.com and on the stand-in: a JSON object from
// key id to PEM certificate.
const CertPath = "/robot/v1/metadata/x509/cloud-commerce-partner@system.gserviceaccount.com"

// GoogleIssuer is the iss of the sign-up tokens Marketplace issues.
const GoogleIssuer = "https://www.googleapis.com" + CertPath

// TokenLifetime is how long a sign-up token is valid: exp = iat + 5 min.
const TokenLifetime = 5 * time.Minute

// CertMaxAge is the max-age of the certificate response.
const CertMaxAge = time.Hour

// IssuerURL returns the certificate URL under base, e.g.
// IssuerURL("http://127.0.0.1:8799") for the stand-in's own.
func IssuerURL(base string) string { return strings.TrimRight(base, "/") + CertPath }

// signingKey is the stand-in's test key pair and its certificate.
type signingKey struct {
	priv *rsa.PrivateKey
	kid  string
	pem  string
}

var (
	keyOnce sync.Once
	key     *signingKey
	keyErr  error
)

// testKey returns the process's test key pair, generated once: every
// stand-in of a process signs with it.
func testKey() (*signingKey, error) {
	keyOnce.Do(func() {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			keyErr = err
			return
		}
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(now.UnixNano()),
			Subject:      pkix.Name{CommonName: "cloud-commerce-partner@system.gserviceaccount.com"},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
		if err != nil {
			keyErr = err
			return
		}
		sum := sha1.Sum(der)
		key = &signingKey{
			priv: priv, kid: hex.EncodeToString(sum[:]),
			pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		}
	})
	return key, keyErr
}

// KeyID returns the kid of the stand-in's signing key.
func (s *Server) KeyID() string { return s.key.kid }

// PublicKey returns the stand-in's signing public key.
func (s *Server) PublicKey() *rsa.PublicKey { return &s.key.priv.PublicKey }

// SetIssuer sets the iss of the tokens SignupToken mints, GoogleIssuer
// until then; a test sets IssuerURL(server.URL) to have verifiers fetch
// the stand-in's own certificates.
func (s *Server) SetIssuer(iss string) {
	s.mu.Lock()
	s.issuer = iss
	s.mu.Unlock()
}

// Issuer returns the iss of the tokens SignupToken mints.
func (s *Server) Issuer() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issuer
}

// SignupToken returns the token Marketplace posts in
// x-gcp-marketplace-token when the buyer of account signs up: an RS256
// JWT whose header names the stand-in's key (kid), with iss = Issuer(),
// aud = audience (the provider's domain), sub = account, iat = now and
// exp = iat + TokenLifetime.
func (s *Server) SignupToken(account, audience string) (string, error) {
	return s.MintToken(jwt.MapClaims{
		"iss": s.Issuer(), "aud": audience, "sub": account,
		"iat": s.now().Unix(), "exp": s.now().Add(TokenLifetime).Unix(),
	})
}

// MintToken signs arbitrary claims with the stand-in's key (RS256, with
// its kid), for tests of what a verifier must refuse.
func (s *Server) MintToken(claims jwt.Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = s.key.kid
	signed, err := t.SignedString(s.key.priv)
	if err != nil {
		return "", fault.Wrap(fault.Internal, "standin.MintToken", err)
	}
	return signed, nil
}

// serveCerts serves {kid: PEM certificate}, cacheable for CertMaxAge.
func (s *Server) serveCerts(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, &apiError{http.StatusMethodNotAllowed, "INVALID_ARGUMENT", "certificates are read with GET"})
		return
	}
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(CertMaxAge/time.Second))+", must-revalidate, no-transform")
	w.Header().Set("Expires", s.now().Add(CertMaxAge).Format(http.TimeFormat))
	writeJSON(w, map[string]string{s.key.kid: s.key.pem})
}
