package platform

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/autonomics/autonomics/shared/event"
	"github.com/autonomics/autonomics/shared/fault"
	"github.com/autonomics/autonomics/shared/governor"
	"github.com/autonomics/autonomics/shared/httpjson"
	"github.com/autonomics/autonomics/shared/topic"
)

// MaxRequestBytes bounds what a governor function reads of a request: a
// push body, or a messagePublished CloudEvent around one, is at most
// event.MaxPushBytes; the rest is room for the CloudEvent envelope.
const MaxRequestBytes = event.MaxPushBytes + 16<<10

// InternalSubscriptions returns the full names of the push subscriptions
// that deliver the eight internal topics in project.
func InternalSubscriptions(project string, names topic.Names) []string {
	out := make([]string, 0, len(governor.Domains))
	for _, d := range governor.Domains {
		out = append(out, topic.SubscriptionName(project, topic.Push(names.Internal(d))))
	}
	return out
}

// GovernorFunction returns the HTTP handler of a governor function. It
// takes what a deployment delivers: a Pub/Sub push body (from the
// subscriptions on the domain's external and internal topics, or the
// emulator's), or a messagePublished CloudEvent over HTTP in binary or
// structured mode (as Eventarc sends), whose data is such a body. The
// request is capped at MaxRequestBytes before anything reads it; a larger
// one, and anything that does not decode, is dead-lettered with the reason
// (without its body) and acknowledged. The function answers 200 when the
// message is done with and 503 when Pub/Sub should deliver it again.
func (l *Lazy) GovernorFunction(domain governor.Domain) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			httpjson.Write(w, http.StatusMethodNotAllowed, map[string]any{"error": map[string]string{
				"code": string(fault.Invalid), "message": "a governor function takes POST only"}})
			return
		}
		eng, clients, err := l.Governors(ctx)
		if err != nil {
			// Configuration errors are logged; the error makes Pub/Sub
			// redeliver until the deployment is fixed.
			slog.ErrorContext(ctx, "governor function not configured", "domain", domain, "error", err.Error())
			httpjson.Error(w, fault.Wrap(fault.Unavailable, "platform.GovernorFunction", err))
			return
		}
		// The instance may be frozen once the invocation returns.
		defer func() { _ = clients.Telemetry.Flush(context.WithoutCancel(ctx)) }()
		msg, body, err := readPush(w, r)
		if err == nil {
			err = eng.HandleMessage(ctx, domain, msg)
		} else {
			err = eng.DeadLetter(ctx, domain, event.Message{ID: msg.ID, Data: body}, err)
		}
		if err != nil {
			httpjson.Error(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// readPush reads and parses the request body as a push body, unwrapping a
// messagePublished CloudEvent first. It returns the body read, nil when it
// was too large. Errors are Invalid.
func readPush(w http.ResponseWriter, r *http.Request) (event.Message, []byte, error) {
	const op = "platform.readPush"
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return event.Message{}, nil, fault.Errorf(fault.Invalid, op, "request body exceeds %d bytes", MaxRequestBytes)
		}
		return event.Message{}, nil, fault.Errorf(fault.Invalid, op, "reading request body: %v", err)
	}
	msg, err := parseRequest(r, body)
	return msg, body, err
}

// parseRequest parses body, unwrapping a messagePublished CloudEvent.
func parseRequest(r *http.Request, body []byte) (event.Message, error) {
	const op = "platform.readPush"
	m := cehttp.NewMessage(r.Header, io.NopCloser(bytes.NewReader(body)))
	if m.ReadEncoding() != binding.EncodingUnknown {
		ce, err := binding.ToEvent(r.Context(), m)
		if err != nil {
			return event.Message{}, fault.Errorf(fault.Invalid, op, "CloudEvent: %s", httpjson.Truncate(err.Error(), 256))
		}
		if ce.Type() != event.MessagePublishedType {
			return event.Message{ID: ce.ID()}, fault.Errorf(fault.Invalid, op, "CloudEvent type %s: want %s",
				httpjson.Quote(ce.Type()), event.MessagePublishedType)
		}
		msg, err := event.ParsePush(ce.Data())
		if msg.ID == "" {
			msg.ID = ce.ID()
		}
		return msg, err
	}
	return event.ParsePush(body)
}
