package routing

import (
	"fmt"
	"strconv"
)

// reply reads the array a Lua script returned. The first element that is missing or
// of the wrong type is remembered and reported by err, so callers read every field
// first and check once.
type reply struct {
	items []any
	bad   string
}

func replyOf(res any) reply {
	items, ok := res.([]any)
	if !ok {
		return reply{bad: fmt.Sprintf("%T %v, not an array", res, res)}
	}
	return reply{items: items}
}

func (r *reply) fail(i int, want string) {
	if r.bad == "" {
		r.bad = fmt.Sprintf("element %d is %v, not %s", i, r.at(i), want)
	}
}

func (r *reply) at(i int) any {
	if i < len(r.items) {
		return r.items[i]
	}
	return nil
}

// str returns element i as a string; nil (a missing hash field) reads as "".
func (r *reply) str(i int) string {
	switch v := r.at(i).(type) {
	case string:
		return v
	case nil:
		return ""
	case int64:
		return strconv.FormatInt(v, 10)
	}
	r.fail(i, "a string")
	return ""
}

// int returns element i as an integer, whether Redis sent a number or its digits.
func (r *reply) int(i int) int64 {
	switch v := r.at(i).(type) {
	case int64:
		return v
	case string:
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	r.fail(i, "an integer")
	return 0
}

// pairs returns element i, a flat HGETALL array, as field/value pairs.
func (r *reply) pairs(i int) [][2]string {
	flat, ok := r.at(i).([]any)
	if !ok || len(flat)%2 != 0 {
		r.fail(i, "a field/value array")
		return nil
	}
	out := make([][2]string, 0, len(flat)/2)
	for j := 0; j < len(flat); j += 2 {
		k, ok1 := flat[j].(string)
		v, ok2 := flat[j+1].(string)
		if !ok1 || !ok2 {
			r.fail(i, "a field/value array of strings")
			return nil
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

// strs returns element i, an array of strings (HKEYS, HVALS).
func (r *reply) strs(i int) []string {
	flat, ok := r.at(i).([]any)
	if !ok {
		r.fail(i, "an array")
		return nil
	}
	out := make([]string, 0, len(flat))
	for _, v := range flat {
		s, ok := v.(string)
		if !ok {
			r.fail(i, "an array of strings")
			return nil
		}
		out = append(out, s)
	}
	return out
}

func (r *reply) err(op, addr string) error {
	if r.bad == "" {
		return nil
	}
	return fmt.Errorf("routing: %s: unexpected reply from Redis at %s (is another program using the strait:* keys?): %s", op, addr, r.bad)
}
