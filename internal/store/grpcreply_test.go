package store

import (
	"testing"
	"time"

	pb "github.com/weaviate/weaviate/grpc/generated/protocol/v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestSearchReplyDecodesLikeProtobuf: replyCodec reads the fields the
// worker uses exactly as the generated code of the pinned Weaviate module
// encodes them, whatever else the reply holds (other value kinds, nested
// objects, group-by results, generative fields).
func TestSearchReplyDecodesLikeProtobuf(t *testing.T) {
	text := func(s string) *pb.Value { return &pb.Value{Kind: &pb.Value_TextValue{TextValue: s}} }
	date := func(s string) *pb.Value { return &pb.Value{Kind: &pb.Value_DateValue{DateValue: s}} }
	reply := &pb.SearchReply{
		Took: 1.5,
		Results: []*pb.SearchResult{
			{
				Properties: &pb.PropertiesResult{
					TargetCollection: MessagesCollection,
					NonRefProps: &pb.Properties{Fields: map[string]*pb.Value{
						propEventID: text("e-1"),
						propRole:    text("user"),
						propText:    text("Hola, ¿dónde está mi pedido? ✓"),
						propSentAt:  date("2026-12-01T10:00:00.123Z"),
						"count":     {Kind: &pb.Value_IntValue{IntValue: 7}},
						"nested":    {Kind: &pb.Value_ObjectValue{ObjectValue: &pb.Properties{Fields: map[string]*pb.Value{propText: text("not me")}}}},
						"list":      {Kind: &pb.Value_ListValue{ListValue: &pb.ListValue{Kind: &pb.ListValue_TextValues{TextValues: &pb.TextValues{Values: []string{"a"}}}}}},
					}},
					Metadata: &pb.MetadataResult{Id: "ignored"},
				},
				Metadata: &pb.MetadataResult{Id: "id-1", Score: 0.75, ScorePresent: true, Distance: 0.1, DistancePresent: true},
			},
			{
				Properties: &pb.PropertiesResult{NonRefProps: &pb.Properties{Fields: map[string]*pb.Value{
					propMuted: {Kind: &pb.Value_BoolValue{BoolValue: true}},
					propUntil: date("2026-12-02T00:00:00Z"),
				}}},
				Metadata: &pb.MetadataResult{},
			},
			{}, // a result with nothing in it
		},
		GroupByResults: []*pb.GroupByResult{{Name: "g", MinDistance: 0.5}},
	}
	b, err := proto.Marshal(reply)
	if err != nil {
		t.Fatal(err)
	}
	var got searchReply
	if err := (replyCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.results) != 3 {
		t.Fatalf("%d results, want 3", len(got.results))
	}
	r := &got.results[0]
	for name, want := range map[string]string{propEventID: "e-1", propRole: "user", propText: "Hola, ¿dónde está mi pedido? ✓", propSentAt: "2026-12-01T10:00:00.123Z", "absent": ""} {
		if v := r.text(name); v != want {
			t.Errorf("result 0 %s = %q, want %q", name, v, want)
		}
	}
	if !r.scorePresent || r.score != 0.75 {
		t.Errorf("result 0 score %v present %v, want 0.75", r.score, r.scorePresent)
	}
	s := &got.results[1]
	if !s.boolean(propMuted) || s.text(propUntil) != "2026-12-02T00:00:00Z" || s.scorePresent {
		t.Errorf("result 1 = %+v", *s)
	}
	if e := &got.results[2]; len(e.props) != 0 || e.scorePresent {
		t.Errorf("empty result decoded as %+v", *e)
	}
	if r.number("count") != 7 || r.number(propText) != 0 {
		t.Errorf("number(count) = %d, number(text) = %d; want 7 and 0", r.number("count"), r.number(propText))
	}
	st := &Store{}
	if m := st.messageFrom(r); m.EventID != "e-1" || m.Role != "user" || m.Text != r.text(propText) || !m.SentAt.Equal(time.Date(2026, 12, 1, 10, 0, 0, 123e6, time.UTC)) {
		t.Errorf("messageFrom = %+v", m)
	}

	// A reply cut short is an error, not a shorter answer.
	var bad searchReply
	if err := (replyCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b[:len(b)/2])}, &bad); err == nil {
		t.Error("half a reply decoded without an error")
	}
}

func BenchmarkSearchReplyDecode(b *testing.B) {
	results := make([]*pb.SearchResult, 10)
	for i := range results {
		results[i] = &pb.SearchResult{
			Properties: &pb.PropertiesResult{NonRefProps: &pb.Properties{Fields: map[string]*pb.Value{
				propEventID: {Kind: &pb.Value_TextValue{TextValue: "wa-1001-0000"}},
				propText:    {Kind: &pb.Value_TextValue{TextValue: "I ordered the blue chair last week and it has not arrived; order SO-1042."}},
				propSentAt:  {Kind: &pb.Value_DateValue{DateValue: "2026-12-01T10:00:00.123Z"}},
			}}},
			Metadata: &pb.MetadataResult{},
		}
	}
	data, err := proto.Marshal(&pb.SearchReply{Results: results})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r pb.SearchReply
			if err := proto.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replyCodec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r searchReply
			if err := (replyCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestSearchReplyEdgeCases: of a property given twice the last counts (as
// protobuf's own decoding keeps the last map entry), and a string that is
// not UTF-8 is an error (as protobuf-go refuses it in proto3).
func TestSearchReplyEdgeCases(t *testing.T) {
	entry := func(key, text string) []byte {
		val := protowire.AppendTag(nil, fieldValueText, protowire.BytesType)
		val = protowire.AppendString(val, text)
		e := protowire.AppendTag(nil, fieldEntryKey, protowire.BytesType)
		e = protowire.AppendString(e, key)
		e = protowire.AppendTag(e, fieldEntryValue, protowire.BytesType)
		return protowire.AppendBytes(e, val)
	}
	reply := func(entries ...[]byte) []byte {
		var props []byte
		for _, e := range entries {
			props = protowire.AppendTag(props, fieldPropertiesFields, protowire.BytesType)
			props = protowire.AppendBytes(props, e)
		}
		pr := protowire.AppendTag(nil, fieldPropsNonRefProps, protowire.BytesType)
		pr = protowire.AppendBytes(pr, props)
		res := protowire.AppendTag(nil, fieldResultProperties, protowire.BytesType)
		res = protowire.AppendBytes(res, pr)
		out := protowire.AppendTag(nil, fieldReplyResults, protowire.BytesType)
		return protowire.AppendBytes(out, res)
	}
	decode := func(b []byte) (searchReply, error) {
		var r searchReply
		return r, (replyCodec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &r)
	}

	twice := reply(entry(propText, "first"), entry(propText, "second"))
	var generated pb.SearchReply
	if err := proto.Unmarshal(twice, &generated); err != nil {
		t.Fatal(err)
	}
	got, err := decode(twice)
	if err != nil {
		t.Fatal(err)
	}
	want := generated.Results[0].GetProperties().GetNonRefProps().GetFields()[propText].GetTextValue()
	if v := got.results[0].text(propText); v != want || v != "second" {
		t.Errorf("a property given twice decoded as %q; protobuf gives %q", v, want)
	}

	bad := reply(entry(propText, "caf\xe9"))
	if err := proto.Unmarshal(bad, &generated); err == nil {
		t.Fatal("protobuf-go accepted invalid UTF-8: the test's premise is wrong")
	}
	if _, err := decode(bad); err == nil {
		t.Error("a text that is not UTF-8 decoded without an error")
	}
}
