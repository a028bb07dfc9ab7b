package signup

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/autonomics/autonomics/shared/httpjson"
)

// minRSABits is the smallest RSA modulus a published key may have.
const minRSABits = 2048

// key is one published verification key and its certificate's validity
// window.
type key struct {
	pub                 *rsa.PublicKey
	notBefore, notAfter time.Time
}

// keySet is the cache of the issuer's keys. mu guards the cached state;
// fetchMu makes fetches one at a time, so that concurrent requests that
// miss wait for one fetch instead of making one each.
type keySet struct {
	url      string
	client   *http.Client
	now      func() time.Time
	logger   *slog.Logger
	maxKeys  int
	maxBytes int64
	timeout  time.Duration
	interval time.Duration

	fetchMu sync.Mutex

	mu      sync.Mutex
	keys    map[string]key
	expires time.Time // the keys are fresh before it
	tried   bool      // a fetch was attempted
	attempt time.Time // the last attempt's start
	lastErr error     // the last attempt's failure, nil after a success
}

// get returns the key kid names, fetching the issuer's keys when the cache
// is empty or stale, or when kid is unknown and the last fetch is at least
// interval old.
func (s *keySet) get(ctx context.Context, kid string) (key, error) {
	for range 2 {
		k, fetch, err := s.lookup(kid)
		if !fetch {
			return k, err
		}
		s.fetchMu.Lock()
		// Another request may have fetched while this one waited.
		if _, fetch, _ = s.lookup(kid); fetch {
			s.refresh(ctx)
		}
		s.fetchMu.Unlock()
	}
	k, _, err := s.lookup(kid)
	if err == nil && k.pub == nil {
		err = refuse(ReasonUnknownKid, "no key %s among the issuer's keys", httpjson.Quote(kid))
	}
	return k, err
}

// lookup answers from the cache: the key, or whether to fetch, or why
// there is no key.
func (s *keySet) lookup(kid string) (key, bool, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys != nil && now.Before(s.expires) {
		if k, ok := s.keys[kid]; ok {
			return k, false, nil
		}
	}
	if !s.tried || now.Sub(s.attempt) >= s.interval || now.Before(s.attempt) {
		return key{}, true, nil
	}
	if s.lastErr != nil {
		return key{}, false, &Error{Reason: ReasonKeysUnavailable, Message: "the issuer's keys are unavailable; retry in a minute", Err: s.lastErr}
	}
	return key{}, false, refuse(ReasonUnknownKid, "no key %s among the issuer's keys", httpjson.Quote(kid))
}

// refresh fetches the keys once and records the outcome. A failure keeps
// the keys that are still fresh.
func (s *keySet) refresh(ctx context.Context) {
	start := s.now()
	s.mu.Lock()
	s.tried, s.attempt = true, start
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	keys, ttl, err := s.fetch(ctx, start)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = err
		s.logger.WarnContext(ctx, "fetching the sign-up token keys failed", "issuer", s.url, "error", err.Error())
		return
	}
	s.keys, s.expires, s.lastErr = keys, start.Add(ttl), nil
	s.logger.InfoContext(ctx, "fetched the sign-up token keys", "issuer", s.url, "keys", len(keys), "ttl", ttl.String())
}

// fetch GETs the issuer's keys: a JSON object of at most maxBytes mapping
// each kid to a PEM X.509 certificate with an RSA key of at least
// minRSABits. Entries that are no such certificate are skipped (logged);
// a response with more than maxKeys entries, or none usable, is an error.
func (s *keySet) fetch(ctx context.Context, now time.Time) (map[string]key, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBytes+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading the keys: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("the issuer answered %d", resp.StatusCode)
	}
	if int64(len(body)) > s.maxBytes {
		return nil, 0, fmt.Errorf("the issuer's keys exceed %d bytes", s.maxBytes)
	}
	if err := httpjson.CheckStrict(body); err != nil {
		return nil, 0, fmt.Errorf("the issuer's keys: %w", err)
	}
	var pems map[string]string
	if err := json.Unmarshal(body, &pems); err != nil {
		return nil, 0, errors.New("the issuer's keys are not a JSON object of strings")
	}
	if len(pems) > s.maxKeys {
		return nil, 0, fmt.Errorf("the issuer published %d keys, limit %d", len(pems), s.maxKeys)
	}
	keys := make(map[string]key, len(pems))
	kids := make([]string, 0, len(pems))
	for kid := range pems {
		kids = append(kids, kid)
	}
	sort.Strings(kids)
	for _, kid := range kids {
		k, err := parseCert(pems[kid])
		if err != nil {
			s.logger.WarnContext(ctx, "skipping an unusable sign-up token key", "issuer", s.url, "kid", httpjson.Truncate(kid, httpjson.MaxEcho), "error", err.Error())
			continue
		}
		keys[kid] = k
	}
	if len(keys) == 0 {
		return nil, 0, errors.New("the issuer published no usable key")
	}
	return keys, s.ttl(resp.Header, now), nil
}

// parseCert decodes one PEM certificate with an RSA key.
func parseCert(p string) (key, error) {
	block, rest := pem.Decode([]byte(p))
	if block == nil || block.Type != "CERTIFICATE" {
		return key{}, errors.New("not a PEM certificate")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return key{}, errors.New("data after the certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return key{}, err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return key{}, fmt.Errorf("%T is not an RSA key", cert.PublicKey)
	}
	if pub.N.BitLen() < minRSABits {
		return key{}, fmt.Errorf("RSA key of %d bits, minimum %d", pub.N.BitLen(), minRSABits)
	}
	return key{pub: pub, notBefore: cert.NotBefore, notAfter: cert.NotAfter}, nil
}

// ttl is how long a response's keys stay fresh: Cache-Control max-age
// less Age, or else Expires less Date, or else DefaultKeysTTL; never
// less than the refetch interval (so that an issuer answering no-cache is
// not asked on every request) nor more than MaxKeysTTL.
func (s *keySet) ttl(h http.Header, now time.Time) time.Duration {
	ttl, ok := maxAge(h)
	if !ok {
		ttl = DefaultKeysTTL
		if exp, err := http.ParseTime(h.Get("Expires")); err == nil {
			base := now
			if d, err := http.ParseTime(h.Get("Date")); err == nil {
				base = d
			}
			ttl = exp.Sub(base)
		} else if h.Get("Expires") != "" {
			ttl = 0 // an invalid Expires means already expired (RFC 9111 5.3)
		}
	}
	return min(max(ttl, s.interval), MaxKeysTTL)
}

// maxAge returns Cache-Control's max-age less the Age header, zero for
// no-store and no-cache, and false when Cache-Control says neither.
func maxAge(h http.Header) (time.Duration, bool) {
	var age time.Duration
	if a, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && a > 0 {
		age = time.Duration(min(a, 1<<31)) * time.Second
	}
	found, ttl := false, time.Duration(0)
	for _, cc := range h.Values("Cache-Control") {
		for d := range strings.SplitSeq(cc, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(val), `"`), 10, 64)
				if err != nil || n < 0 {
					return 0, true
				}
				found, ttl = true, time.Duration(min(n, 1<<31))*time.Second-age
			}
		}
	}
	return ttl, found
}
