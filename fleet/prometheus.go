package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxAnswer bounds what is read of one Prometheus answer: a view of a few
// hundred routes is a few hundred kilobytes.
const maxAnswer = 16 << 20

// sample is one series of an instant vector.
type sample struct {
	labels map[string]string
	value  float64
}

// series is one series of a range query, one value per step (NaN where
// Prometheus had none).
type series struct {
	labels map[string]string
	at     []time.Time
	values []float64
}

// client queries the HTTP API of one Prometheus (/api/v1/query and
// /api/v1/query_range).
type client struct {
	http *http.Client
	base *url.URL
}

// apiAnswer is the envelope of every answer of the Prometheus HTTP API.
type apiAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	// Warnings come with an answer that may be partial (a remote store or
	// a shard that did not answer, behind Thanos or Cortex; a remote read
	// that failed). PromQL's infos are about the query, not missing
	// data: Prometheus 2.54 and later answer them apart, in infos; earlier
	// ones and Thanos put them among the warnings, "PromQL info: ...".
	Warnings []string `json:"warnings"`
	Data     struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// get runs one API call and returns its data, or why not.
func (c *client) get(ctx context.Context, path string, params url.Values, wantType string) (*apiAnswer, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		// The url.Error repeats the whole query URL: the query is added
		// once by the caller.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer res.Body.Close()
	var a apiAnswer
	// The API answers errors (400 bad query, 422, 503) with the same JSON
	// envelope: decode it first, then judge the status.
	if err := json.NewDecoder(io.LimitReader(res.Body, maxAnswer)).Decode(&a); err != nil {
		return nil, fmt.Errorf("HTTP %d from %s, not a Prometheus API answer", res.StatusCode, u.Path)
	}
	if a.Status != "success" {
		return nil, fmt.Errorf("prometheus: %s: %s", a.ErrorType, a.Error)
	}
	if partial := partialWarnings(a.Warnings); len(partial) > 0 {
		// A sum that may miss a replica's mismatches must not judge.
		return nil, fmt.Errorf("prometheus answered with warnings, so the answer may be partial: %s", strings.Join(partial, "; "))
	}
	if a.Data.ResultType != wantType {
		return nil, fmt.Errorf("prometheus answered a %s, not a %s", a.Data.ResultType, wantType)
	}
	return &a, nil
}

// partialWarnings are the warnings that may mean missing data: all but
// PromQL's infos on the query itself (histogram_quantile fixing buckets
// that are not monotonic). A PromQL warning may mean series were dropped.
func partialWarnings(ws []string) []string {
	var out []string
	for _, w := range ws {
		if !strings.HasPrefix(w, "PromQL info:") {
			out = append(out, w)
		}
	}
	return out
}

// instant evaluates query at t.
func (c *client) instant(ctx context.Context, query string, t time.Time) ([]sample, error) {
	a, err := c.get(ctx, "api/v1/query", url.Values{"query": {query}, "time": {formatTime(t)}}, "vector")
	if err != nil {
		return nil, fmt.Errorf("%w (query %s)", err, query)
	}
	out := make([]sample, 0, len(a.Data.Result))
	for _, r := range a.Data.Result {
		_, v, err := point(r.Value)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", query, err)
		}
		out = append(out, sample{labels: r.Metric, value: v})
	}
	return out, nil
}

// rangeQuery evaluates query at every step from start to end.
func (c *client) rangeQuery(ctx context.Context, query string, start, end time.Time, step time.Duration) ([]series, error) {
	a, err := c.get(ctx, "api/v1/query_range", url.Values{
		"query": {query}, "start": {formatTime(start)}, "end": {formatTime(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}, "matrix")
	if err != nil {
		return nil, fmt.Errorf("%w (query %s)", err, query)
	}
	out := make([]series, 0, len(a.Data.Result))
	for _, r := range a.Data.Result {
		s := series{labels: r.Metric}
		for _, p := range r.Values {
			t, v, err := point(p)
			if err != nil {
				return nil, fmt.Errorf("query %s: %w", query, err)
			}
			s.at, s.values = append(s.at, t), append(s.values, v)
		}
		out = append(out, s)
	}
	return out, nil
}

// point decodes [unix seconds, "value"]; values are strings so that NaN and
// ±Inf survive JSON.
func point(p []any) (time.Time, float64, error) {
	if len(p) != 2 {
		return time.Time{}, 0, errors.New("a sample is not [time, value]")
	}
	ts, ok1 := p[0].(float64)
	vs, ok2 := p[1].(string)
	if !ok1 || !ok2 {
		return time.Time{}, 0, errors.New("a sample is not [time, value]")
	}
	v, err := strconv.ParseFloat(vs, 64)
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("sample value %q: %w", vs, err)
	}
	sec, frac := int64(ts), ts-float64(int64(ts))
	return time.Unix(sec, int64(frac*1e9)), v, nil
}

func formatTime(t time.Time) string {
	return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)
}

// selector returns metric{matchers} with the configured selector and the
// extra matchers joined.
func selector(metric, configured string, extra ...string) string {
	var ms []string
	if s := strings.TrimRight(strings.TrimSpace(configured), ", \t"); s != "" {
		ms = append(ms, s)
	}
	ms = append(ms, extra...)
	return metric + "{" + strings.Join(ms, ", ") + "}"
}
