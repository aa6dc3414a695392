package chaos_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strings"
)

// leaked returns the secrets found in logs: in any line as written, and in
// any string value of a JSON line once decoded (so that JSON escaping cannot
// hide one).
func leaked(logs []byte, secrets []string) []string {
	var texts []string
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		texts = append(texts, line)
		var v any
		if json.Unmarshal([]byte(line), &v) == nil {
			texts = appendStrings(texts, v)
		}
	}
	return find(strings.Join(texts, "\n"), secrets)
}

// find returns the secrets that occur in haystack, in one pass over it:
// every position is looked up by the secrets' common prefix length.
func find(haystack string, secrets []string) []string {
	k := 0
	for _, s := range secrets {
		if s != "" && (k == 0 || len(s) < k) {
			k = len(s)
		}
	}
	if k == 0 {
		return nil
	}
	byPrefix := map[string][]string{}
	for _, s := range secrets {
		if s != "" {
			byPrefix[s[:k]] = append(byPrefix[s[:k]], s)
		}
	}
	seen := map[string]bool{}
	var found []string
	for i := 0; i+k <= len(haystack); i++ {
		for _, s := range byPrefix[haystack[i:i+k]] {
			if !seen[s] && strings.HasPrefix(haystack[i:], s) {
				seen[s] = true
				found = append(found, s)
			}
		}
	}
	return found
}

func appendStrings(out []string, v any) []string {
	switch v := v.(type) {
	case string:
		out = append(out, v)
	case map[string]any:
		for k, x := range v {
			out = append(out, k)
			out = appendStrings(out, x)
		}
	case []any:
		for _, x := range v {
			out = appendStrings(out, x)
		}
	}
	return out
}
