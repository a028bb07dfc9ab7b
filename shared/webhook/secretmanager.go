package webhook

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"

	"github.com/autonomics/autonomics/shared/fault"
	"google.golang.org/api/googleapi"
	secretmanager "google.golang.org/api/secretmanager/v1"
)

// SecretManager resolves secret references through the Secret Manager API
// with Application Default Credentials, connecting on first use. The
// payload of a version is a serialized secret, "whsec_<base64>".
type SecretManager struct {
	once sync.Once
	svc  *secretmanager.Service
	err  error
}

// Resolve returns the secret the version ref holds.
func (m *SecretManager) Resolve(ctx context.Context, ref string) (Secret, error) {
	const op = "webhook.SecretManager"
	if !IsSecretRef(ref) {
		return Secret{}, fault.Errorf(fault.Invalid, op, "%s is not a Secret Manager version name", quote(ref))
	}
	m.once.Do(func() { m.svc, m.err = secretmanager.NewService(context.WithoutCancel(ctx)) })
	if m.err != nil {
		return Secret{}, fault.Wrap(fault.Unavailable, op, m.err)
	}
	resp, err := m.svc.Projects.Secrets.Versions.Access(ref).Context(ctx).Do()
	if err != nil {
		code := fault.Unavailable
		if e, ok := err.(*googleapi.Error); ok && (e.Code == 403 || e.Code == 404) {
			code = fault.NotFound
		}
		return Secret{}, fault.Wrap(code, op+" "+ref, err)
	}
	if resp.Payload == nil {
		return Secret{}, fault.Errorf(fault.NotFound, op, "%s has no payload", ref)
	}
	b, err := base64.StdEncoding.DecodeString(resp.Payload.Data)
	if err != nil {
		return Secret{}, fault.Errorf(fault.Invalid, op, "%s: payload is not base64", ref)
	}
	s, err := ParseSecret(strings.TrimSpace(string(b)))
	if err != nil {
		return Secret{}, fault.Errorf(fault.Invalid, op, "%s: %s", ref, fault.ErrorMessage(err))
	}
	return s, nil
}
