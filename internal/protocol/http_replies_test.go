package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// replies lists every HTTP reply struct (http_replies.go, http_tasks.go).
func replies() []any {
	return []any{ErrorReply{}, ValidationReply{}, StatusReply{}, Health{}, ConnectedAgent{}, AgentList[AgentState]{},
		NamedCapability{}, AgentState{}, MessageAccepted{}, HeartbeatInterval{}, MailboxRetention{}, DefaultRepo{},
		DefaultRepoSet{}, Mailbox{}, MailboxAcked{}, Thread{}, Replies{}, ThreadRoot{}, ChannelList{}, ChannelStatus{},
		ChannelInfo{}, ChannelPublishedReply{}, ChannelHistoryPage{}, Subscriptions{}, MessagePage{}, TokenCreated{},
		TokenList{}, TokensRevoked{}, AnalyticsAgents{}, AgentHourly{}, Registered{}, TaskSubmitted{}, BatchSubmitted{},
		TaskRequeued{}, TaskCancelledReply{}, TaskPushed{}, PauseChanged{}, ScheduleList{}, ScheduleRemoved{},
		BackupList{}, TableStatus{}, AlertList{}, ResetRefused{}, ResetScheduled{}, Timeline{}, VAPIDKey{},
		LoadingHealth{}, ClusterHealth{}}
}

// TestRepliesEncodeLikeMaps: the reply structs replaced maps, whose keys
// encoding/json writes sorted. Each struct, every field set, encodes to
// the same bytes as the map of its own JSON, so the wire is unchanged.
func TestRepliesEncodeLikeMaps(t *testing.T) {
	for _, r := range replies() {
		v := reflect.New(reflect.TypeOf(r)).Elem()
		fill(v)
		got := encode(t, v.Interface())
		// Nested values stay as encoded: they were structs before too.
		var m map[string]json.RawMessage
		if err := json.Unmarshal(got, &m); err != nil {
			t.Fatal(err)
		}
		if want := encode(t, m); !bytes.Equal(got, want) {
			t.Errorf("%T encodes\n%s\nnot as its map\n%s", r, got, want)
		}
	}
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// fill sets every field of v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("s")
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint64:
		v.SetUint(1)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Interface:
		v.Set(reflect.ValueOf("v"))
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	}
}
