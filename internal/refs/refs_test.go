package refs

import (
	"slices"
	"testing"
)

func TestFind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []Ref
	}{
		{"Where is order S00042?", []Ref{{"S00042", SaleOrder}}},
		{"invoice INV/2026/00017 for s00042 and S00042 again", []Ref{{"INV/2026/00017", Invoice}, {"S00042", SaleOrder}}},
		{"The missing crates are for delivery WH/OUT/00011, return WH/IN/00003.", []Ref{{"WH/OUT/00011", Delivery}, {"WH/IN/00003", Delivery}}},
		{"PO00012,S00001", []Ref{{"PO00012", PurchaseOrder}, {"S00001", SaleOrder}}},
		{"no refs: S0042 SS00042 S00042X XS00042 INV/26/1 order 00042 éS00042 S00042é S00042/ WH/OUT/", nil},
		{"(S00042), «PO00012»; rinv/2026/0001 and bill/2026/00002!", []Ref{{"S00042", SaleOrder}, {"PO00012", PurchaseOrder},
			{"RINV/2026/0001", Invoice}, {"BILL/2026/00002", Invoice}}},
		{"", nil},
	} {
		if got := Find(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Find(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	rs := Find("S00042 INV/2026/00017 WH/OUT/00005 PO00012")
	s := Encode(rs)
	if s != "sale_order:S00042 invoice:INV/2026/00017 delivery:WH/OUT/00005 purchase_order:PO00012" {
		t.Errorf("Encode = %q", s)
	}
	if got := Decode(s); !slices.Equal(got, rs) {
		t.Errorf("Decode(Encode) = %v, want %v", got, rs)
	}
	if Encode(nil) != "" || Decode("") != nil || Decode("bad :x y:") != nil {
		t.Error("empty and malformed")
	}
}

func FuzzFind(f *testing.F) {
	f.Add("S00042 INV/2026/00017 WH/OUT/00005")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range Find(s) {
			if got := Find(r.Ref); len(got) != 1 || got[0] != r {
				t.Fatalf("%q found in %q is not found alone: %v", r.Ref, s, got)
			}
		}
	})
}

func BenchmarkFind(b *testing.B) {
	text := "Order S00042 was confirmed on 24 November and is being picked; planned shipment 30 November, invoice INV/2026/00009."
	for b.Loop() {
		Find(text)
	}
}
