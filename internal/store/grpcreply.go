package store

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec replyCodec marshals requests with
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// searchReply is what the worker reads of Weaviate's gRPC SearchReply: per
// result its plain properties and its score, nothing else.
//
// Why not the generated pb.SearchReply: protobuf-go decodes each property
// of each result (a map<string, Value> entry, Value a oneof) by reflection,
// with an allocation per entry, value and oneof wrapper. That was 17% of the
// worker's CPU in `make bench` row 1 and the largest share of its
// allocations. This decoder walks the wire format once and keeps only the
// fields below, skipping everything else (unknown fields included, so a
// newer Weaviate that adds fields still decodes). The field numbers are
// those of weaviate/grpc/proto/v1 (search_get.proto, properties.proto), the
// API the requests ask for with uses_127_api; TestSearchReplyDecodesLikeProtobuf
// checks them against the generated code of the pinned Weaviate module.
type searchReply struct {
	results []searchHit
}

// searchHit is one result.
type searchHit struct {
	props        []hitProp
	score        float32
	scorePresent bool
}

// hitProp is one property of a result: its text (text_value or date_value,
// as Weaviate sends dates as RFC 3339 text) or its boolean.
type hitProp struct {
	name    string
	text    string
	boolean bool
	number  int64
}

// text is the text or date property name, "" when absent. Of a name given
// twice the last counts, as in protobuf's map decoding.
func (h *searchHit) text(name string) string {
	for i := len(h.props) - 1; i >= 0; i-- {
		if h.props[i].name == name {
			return h.props[i].text
		}
	}
	return ""
}

// boolean is the boolean property name, false when absent (the last of a
// name given twice).
// number is the int property name's value, 0 when absent.
func (h *searchHit) number(name string) int64 {
	for i := len(h.props) - 1; i >= 0; i-- {
		if h.props[i].name == name {
			return h.props[i].number
		}
	}
	return 0
}

func (h *searchHit) boolean(name string) bool {
	for i := len(h.props) - 1; i >= 0; i-- {
		if h.props[i].name == name {
			return h.props[i].boolean
		}
	}
	return false
}

// Field numbers of the messages decoded.
const (
	fieldReplyResults     = 2  // SearchReply.results
	fieldResultProperties = 1  // SearchResult.properties
	fieldResultMetadata   = 2  // SearchResult.metadata
	fieldPropsNonRefProps = 11 // PropertiesResult.non_ref_props
	fieldPropertiesFields = 1  // Properties.fields (map entries)
	fieldEntryKey         = 1  // map entry key
	fieldEntryValue       = 2  // map entry value
	fieldValueBool        = 3  // Value.bool_value
	fieldValueInt         = 8  // Value.int_value
	fieldValueDate        = 6  // Value.date_value
	fieldValueText        = 13 // Value.text_value
	fieldMetaScore        = 11 // MetadataResult.score (fixed32)
	fieldMetaScorePresent = 12 // MetadataResult.score_present
)

// errInvalidUTF8 refuses a string that is not UTF-8, as protobuf-go does
// for proto3 strings.
var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

const (
	searchMethod   = "/weaviate.v1.Weaviate/Search"
	replyCodecName = "proto" // the content-subtype Weaviate serves
)

// replyCodec marshals requests as the "proto" codec does and unmarshals
// replies into a *searchReply. It is used per call (grpc.ForceCodecV2, an
// experimental option of grpc-go; the pinned version is tested) and keeps
// the content-subtype "proto", so Weaviate sees an ordinary call.
type replyCodec struct{}

var _ encoding.CodecV2 = replyCodec{}

func (replyCodec) Name() string { return replyCodecName }

func (replyCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(replyCodecName).Marshal(v)
}

func (replyCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*searchReply)
	if !ok {
		return fmt.Errorf("weaviate search reply: cannot decode into %T", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if err := r.decode(buf.ReadOnlyData()); err != nil {
		return fmt.Errorf("decode weaviate search reply: %w", err)
	}
	return nil
}

// searchCall is the call option that decodes a Search reply into a
// *searchReply.
var searchCall = grpc.ForceCodecV2(replyCodec{})

// eachField calls fn for each field of the message b, with the field's bytes
// (for length-delimited fields) or its value (varint, fixed32); other wire
// types are skipped.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return protowire.ParseError(l)
		}
		b = b[l:]
		var (
			val []byte
			n   uint64
		)
		switch typ {
		case protowire.BytesType:
			val, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, l = protowire.ConsumeFixed32(b)
			n = uint64(x)
		default:
			l = protowire.ConsumeFieldValue(num, typ, b)
		}
		if l < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(l))
		}
		b = b[l:]
		if err := fn(num, typ, val, n); err != nil {
			return err
		}
	}
	return nil
}

func (r *searchReply) decode(b []byte) error {
	r.results = r.results[:0]
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != fieldReplyResults || typ != protowire.BytesType {
			return nil
		}
		var h searchHit
		if err := h.decode(v); err != nil {
			return fmt.Errorf("result %d: %w", len(r.results), err)
		}
		r.results = append(r.results, h)
		return nil
	})
}

func (h *searchHit) decode(b []byte) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldResultProperties:
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != fieldPropsNonRefProps || typ != protowire.BytesType {
					return nil
				}
				return h.decodeProperties(v)
			})
		case fieldResultMetadata:
			return eachField(v, func(num protowire.Number, typ protowire.Type, _ []byte, n uint64) error {
				switch {
				case num == fieldMetaScore && typ == protowire.Fixed32Type:
					h.score = math.Float32frombits(uint32(n))
				case num == fieldMetaScorePresent && typ == protowire.VarintType:
					h.scorePresent = n != 0
				}
				return nil
			})
		}
		return nil
	})
}

// decodeProperties reads Properties.fields: map entries of a name and a
// Value.
func (h *searchHit) decodeProperties(b []byte) error {
	if h.props == nil {
		h.props = make([]hitProp, 0, 4)
	}
	return eachField(b, func(num protowire.Number, typ protowire.Type, entry []byte, _ uint64) error {
		if num != fieldPropertiesFields || typ != protowire.BytesType {
			return nil
		}
		var p hitProp
		err := eachField(entry, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case num == fieldEntryKey && typ == protowire.BytesType:
				if !utf8.Valid(v) {
					return errInvalidUTF8
				}
				p.name = string(v)
			case num == fieldEntryValue && typ == protowire.BytesType:
				return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
					switch {
					case (num == fieldValueText || num == fieldValueDate) && typ == protowire.BytesType:
						if !utf8.Valid(v) {
							return errInvalidUTF8
						}
						p.text = string(v)
					case num == fieldValueBool && typ == protowire.VarintType:
						p.boolean = n != 0
					case num == fieldValueInt && typ == protowire.VarintType:
						p.number = int64(n)
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("property: %w", err)
		}
		h.props = append(h.props, p)
		return nil
	})
}
