package webpush

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	validP256dh = rfcUAPublic
	validAuth   = rfcAuth
)

func TestParseSubscription(t *testing.T) {
	doc := `{"endpoint":"https://fcm.googleapis.com/fcm/send/abc:def","expirationTime":null,` +
		`"keys":{"p256dh":"` + validP256dh + `","auth":"` + validAuth + `"}}`
	sub, err := ParseSubscription([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := Subscription{Endpoint: "https://fcm.googleapis.com/fcm/send/abc:def",
		Keys: SubscriptionKeys{P256dh: validP256dh, Auth: validAuth}}
	if !reflect.DeepEqual(sub, want) {
		t.Fatalf("got %+v", sub)
	}
	for _, ep := range []string{"http://127.0.0.1:8080/p", "http://localhost/p", "http://[::1]:9/p", "HTTPS://Push.Example/p"} {
		s := want
		s.Endpoint = ep
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
}

func TestSubscriptionValidateErrors(t *testing.T) {
	mod := func(f func(*Subscription)) Subscription {
		s := Subscription{Endpoint: "https://push.example/x", Keys: SubscriptionKeys{P256dh: validP256dh, Auth: validAuth}}
		f(&s)
		return s
	}
	offCurve := make([]byte, 65)
	offCurve[0] = 4
	offCurve[64] = 1
	tests := []struct {
		name  string
		sub   Subscription
		field string
	}{
		{"no endpoint", mod(func(s *Subscription) { s.Endpoint = "" }), "endpoint"},
		{"relative", mod(func(s *Subscription) { s.Endpoint = "/push/x" }), "endpoint"},
		{"http remote", mod(func(s *Subscription) { s.Endpoint = "http://push.example/x" }), "endpoint"},
		{"http lookalike", mod(func(s *Subscription) { s.Endpoint = "http://localhost.evil.example/x" }), "endpoint"},
		{"ftp", mod(func(s *Subscription) { s.Endpoint = "ftp://push.example/x" }), "endpoint"},
		{"opaque", mod(func(s *Subscription) { s.Endpoint = "https:push.example" }), "endpoint"},
		{"credentials", mod(func(s *Subscription) { s.Endpoint = "https://u:p@push.example/x" }), "endpoint"},
		{"control char", mod(func(s *Subscription) { s.Endpoint = "https://push.example/\x00" }), "endpoint"},
		{"too long", mod(func(s *Subscription) { s.Endpoint = "https://push.example/" + strings.Repeat("a", MaxEndpointLength) }), "endpoint"},
		{"no p256dh", mod(func(s *Subscription) { s.Keys.P256dh = "" }), "keys.p256dh"},
		{"p256dh not b64", mod(func(s *Subscription) { s.Keys.P256dh = "***" }), "keys.p256dh"},
		{"p256dh short", mod(func(s *Subscription) { s.Keys.P256dh = validAuth }), "keys.p256dh"},
		{"p256dh off curve", mod(func(s *Subscription) { s.Keys.P256dh = base64.RawURLEncoding.EncodeToString(offCurve) }), "keys.p256dh"},
		{"no auth", mod(func(s *Subscription) { s.Keys.Auth = "" }), "keys.auth"},
		{"auth not b64", mod(func(s *Subscription) { s.Keys.Auth = "a b" }), "keys.auth"},
		{"auth long", mod(func(s *Subscription) { s.Keys.Auth = validP256dh }), "keys.auth"},
	}
	for _, tc := range tests {
		err := tc.sub.Validate()
		var se *SubscriptionError
		if !errors.As(err, &se) || se.Field != tc.field || !errors.Is(err, ErrInvalidSubscription) {
			t.Errorf("%s: err = %v, want a SubscriptionError on %s", tc.name, err, tc.field)
		}
	}
}

func TestParseSubscriptionDocumentErrors(t *testing.T) {
	for doc, field := range map[string]string{
		``:               "",
		`[]`:             "",
		`null`:           "endpoint",
		`{}`:             "endpoint",
		`{"endpoint":5}`: "endpoint",
		`{"endpoint":"https://p.example/x","keys":"k"}`:                                               "keys",
		`{"endpoint":"https://p.example/x","keys":{"p256dh":1}}`:                                      "keys.p256dh",
		`{"endpoint":"https://p.example/x"} trailing`:                                                 "",
		`{"endpoint":"https://p.example/x","pad":"` + strings.Repeat("x", MaxSubscriptionJSON) + `"}`: "",
	} {
		_, err := ParseSubscription([]byte(doc))
		var se *SubscriptionError
		if !errors.As(err, &se) || se.Field != field {
			t.Errorf("%.60q: err = %v, want a SubscriptionError on %q", doc, err, field)
		}
	}
}

// FuzzParseSubscription feeds arbitrary documents to the decoder: it must
// never panic, must only return SubscriptionErrors, and whatever it accepts
// must validate, be safe to push to, and survive a JSON round trip.
func FuzzParseSubscription(f *testing.F) {
	keys := `"keys":{"p256dh":"` + validP256dh + `","auth":"` + validAuth + `"}`
	f.Add([]byte(`{"endpoint":"https://fcm.googleapis.com/fcm/send/x","expirationTime":null,` + keys + `}`))
	f.Add([]byte(`{"endpoint":"http://127.0.0.1:1/x",` + keys + `}`))
	f.Add([]byte(`{"endpoint":"http://push.example/x",` + keys + `}`))
	f.Add([]byte(`{"endpoint":"https://p.example/x","keys":{"p256dh":"AAAA","auth":"` + validAuth + `"}}`))
	f.Add([]byte(`{"endpoint":"https://p.example/x","keys":null}`))
	f.Add([]byte(`{"endpoint":"https://p.example/x","keys":{"p256dh":"` + validP256dh + `==","auth":"` + validAuth + `=="}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[1,2]`))
	f.Add([]byte(`"x"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sub, err := ParseSubscription(data)
		if err != nil {
			var se *SubscriptionError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSubscription) {
				t.Fatalf("error %v is not a SubscriptionError", err)
			}
			return
		}
		if err := sub.Validate(); err != nil {
			t.Fatalf("accepted subscription does not validate: %v", err)
		}
		ps, err := sub.parse()
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.ToLower(ps.endpoint.Scheme); s != "https" && !(s == "http" && isLoopback(ps.endpoint.Hostname())) {
			t.Fatalf("accepted endpoint %q", sub.Endpoint)
		}
		if len(ps.auth) != 16 || len(ps.uaPublic.Bytes()) != 65 {
			t.Fatal("accepted keys of the wrong size")
		}
		again, err := ParseSubscription(mustJSON(t, sub))
		if err != nil || !reflect.DeepEqual(again, sub) {
			t.Fatalf("round trip: %+v, %v", again, err)
		}
		if _, err := json.Marshal(sub); err != nil {
			t.Fatal(err)
		}
	})
}
