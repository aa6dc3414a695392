package cwtest

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// The request shapes of CloudWatch's Smithy model, as the SDK encodes them in
// RPC v2 CBOR. Decoding is strict: a field this server does not know fails
// the call, so a test cannot pass on data it did not look at.
type wirePutMetricData struct {
	Namespace              string          `cbor:"Namespace"`
	MetricData             []wireDatum     `cbor:"MetricData"`
	EntityMetricData       cbor.RawMessage `cbor:"EntityMetricData"`
	StrictEntityValidation *bool           `cbor:"StrictEntityValidation"`
}

type wireDatum struct {
	MetricName        string          `cbor:"MetricName"`
	Dimensions        []wireDimension `cbor:"Dimensions"`
	Timestamp         cbor.RawMessage `cbor:"Timestamp"`
	Value             *float64        `cbor:"Value"`
	StatisticValues   *wireStatistics `cbor:"StatisticValues"`
	Values            []float64       `cbor:"Values"`
	Counts            []float64       `cbor:"Counts"`
	Unit              string          `cbor:"Unit"`
	StorageResolution *int32          `cbor:"StorageResolution"`
}

type wireDimension struct {
	Name  string `cbor:"Name"`
	Value string `cbor:"Value"`
}

type wireStatistics struct {
	SampleCount *float64 `cbor:"SampleCount"`
	Sum         *float64 `cbor:"Sum"`
	Minimum     *float64 `cbor:"Minimum"`
	Maximum     *float64 `cbor:"Maximum"`
}

type wireListMetrics struct {
	Namespace  string          `cbor:"Namespace"`
	MetricName string          `cbor:"MetricName"`
	Dimensions []wireDimension `cbor:"Dimensions"`
}

type wireMetric struct {
	Namespace  string          `cbor:"Namespace"`
	MetricName string          `cbor:"MetricName"`
	Dimensions []wireDimension `cbor:"Dimensions"`
}

type wireListMetricsOutput struct {
	Metrics []wireMetric `cbor:"Metrics"`
}

// decoder holds the strict and lenient CBOR decoding modes.
type decoder struct {
	strict, lenient cbor.DecMode
}

func newDecoder() (decoder, error) {
	strict, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
	}.DecMode()
	if err != nil {
		return decoder{}, fmt.Errorf("build strict CBOR decoder: %w", err)
	}
	lenient, err := cbor.DecOptions{}.DecMode()
	if err != nil {
		return decoder{}, fmt.Errorf("build CBOR decoder: %w", err)
	}
	return decoder{strict, lenient}, nil
}

// body reads a request body, gunzipping it when Content-Encoding says so.
// It returns the uncompressed body.
func body(r io.Reader, encoding string) ([]byte, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	switch encoding {
	case "":
		return raw, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("open gzip body: %w", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			return nil, fmt.Errorf("gunzip body: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported Content-Encoding %q", encoding)
}

// decodePut decodes and converts one PutMetricData body.
func (d decoder) decodePut(p []byte) (string, []Datum, error) {
	var in wirePutMetricData
	if err := d.strict.Unmarshal(p, &in); err != nil {
		return "", nil, fmt.Errorf("decode PutMetricData body: %w", err)
	}
	if in.EntityMetricData != nil {
		return "", nil, errors.New("EntityMetricData is not supported by this test server")
	}
	data := make([]Datum, 0, len(in.MetricData))
	for i, w := range in.MetricData {
		dm := Datum{
			MetricName:        w.MetricName,
			Unit:              w.Unit,
			Value:             w.Value,
			Values:            w.Values,
			Counts:            w.Counts,
			StorageResolution: w.StorageResolution,
		}
		for _, dim := range w.Dimensions {
			dm.Dimensions = append(dm.Dimensions, Dimension(dim))
		}
		if w.StatisticValues != nil {
			s := w.StatisticValues
			if s.SampleCount == nil || s.Sum == nil || s.Minimum == nil || s.Maximum == nil {
				return "", nil, fmt.Errorf("MetricData.member.%d.StatisticValues: SampleCount, Sum, Minimum and Maximum are all required", i+1)
			}
			dm.StatisticValues = &StatisticSet{*s.SampleCount, *s.Sum, *s.Minimum, *s.Maximum}
		}
		if w.Timestamp != nil {
			ts, err := d.timestamp(w.Timestamp)
			if err != nil {
				return "", nil, fmt.Errorf("MetricData.member.%d.Timestamp: %w", i+1, err)
			}
			dm.Timestamp = &ts
		}
		data = append(data, dm)
	}
	return in.Namespace, data, nil
}

// timestamp decodes an RPC v2 CBOR timestamp: tag 1 around epoch seconds,
// an integer or a float. Milliseconds are the protocol's precision.
func (d decoder) timestamp(raw cbor.RawMessage) (time.Time, error) {
	var tag cbor.Tag
	if err := d.lenient.Unmarshal(raw, &tag); err != nil {
		return time.Time{}, fmt.Errorf("decode: %w", err)
	}
	if tag.Number != 1 {
		return time.Time{}, fmt.Errorf("tag %d, want 1 (epoch seconds)", tag.Number)
	}
	var sec float64
	switch v := tag.Content.(type) {
	case uint64:
		sec = float64(v)
	case int64:
		sec = float64(v)
	case float64:
		sec = v
	default:
		return time.Time{}, fmt.Errorf("tag 1 content is %T, want a number", v)
	}
	if math.IsNaN(sec) || math.IsInf(sec, 0) {
		return time.Time{}, errors.New("not a finite number")
	}
	return time.UnixMilli(int64(math.Round(sec * 1000))).UTC(), nil
}
