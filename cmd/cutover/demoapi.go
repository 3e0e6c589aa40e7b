package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
)

// demoAPI is one of the demo's two implementations of a small users and
// orders service. The "new" one differs from the "old" the way real
// rewrites do: a renamed field, a number printed differently, another array
// order, an extra field, its own timestamps, and one real bug (it forgets
// the discount in an order's total).
type demoAPI struct {
	flavor string
	now    func() time.Time

	mu     sync.Mutex
	users  map[int]*demoUser
	orders map[int]*demoOrder
}

type demoUser struct {
	ID      int      `json:"id"`
	Name    string   `json:"name"`
	Email   string   `json:"email"`
	Roles   []string `json:"roles"`
	Balance float64  `json:"balance"`
	Updated time.Time
}

type demoItem struct {
	SKU   string  `json:"sku"`
	Qty   int     `json:"qty"`
	Price float64 `json:"price"`
}

type demoOrder struct {
	ID       int        `json:"id"`
	UserID   int        `json:"user_id"`
	Items    []demoItem `json:"items"`
	Discount float64    `json:"discount"`
	Updated  time.Time
}

// demoNames are the demo's users, by id - 1; the traffic writes them too.
var demoNames = []string{"ada", "grace", "linus", "ken", "barbara", "edsger", "margaret", "dennis", "frances", "john"}

// demoSeed is the data both backends start with, as after a backfill.
func demoSeed() (map[int]*demoUser, map[int]*demoOrder) {
	roleSets := [][]string{{"admin", "dev"}, {"dev"}, {"billing", "dev", "ops"}, {"ops"}}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	users := map[int]*demoUser{}
	for i, n := range demoNames {
		id := i + 1
		users[id] = &demoUser{ID: id, Name: n, Email: n + "@example.com", Roles: slices.Clone(roleSets[i%len(roleSets)]), Balance: float64(id*1250) / 100, Updated: start}
	}
	orders := map[int]*demoOrder{}
	for id := 1; id <= 30; id++ {
		o := &demoOrder{ID: id, UserID: id%len(demoNames) + 1, Updated: start}
		for k := range id%3 + 1 {
			o.Items = append(o.Items, demoItem{SKU: fmt.Sprintf("SKU-%03d", (id*7+k)%100), Qty: k + 1, Price: float64(199+id*10+k) / 10})
		}
		if id%3 == 0 {
			o.Discount = 5
		}
		orders[id] = o
	}
	return users, orders
}

func newDemoAPI(flavor string, now func() time.Time) *demoAPI {
	users, orders := demoSeed()
	return &demoAPI{flavor: flavor, now: now, users: users, orders: orders}
}

func (a *demoAPI) handler() http.Handler {
	r := chi.NewRouter()
	r.Get("/users/{id}", a.getUser)
	r.Put("/users/{id}", a.putUser)
	r.Delete("/users/{id}", a.deleteUser)
	r.Get("/orders/{id}", a.getOrder)
	r.Put("/orders/{id}", a.putOrder)
	r.Post("/search", a.search)
	r.Get("/health", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	return r
}

func (a *demoAPI) id(w http.ResponseWriter, r *http.Request) (int, bool) {
	id, err := strconv.Atoi(chi.URLParam(r, "id"))
	if err != nil || id <= 0 {
		a.fail(w, http.StatusBadRequest, "id must be a positive number")
		return 0, false
	}
	return id, true
}

func (a *demoAPI) fail(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

func (a *demoAPI) send(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Backend", a.flavor)
	json.NewEncoder(w).Encode(v)
}

// userJSON renders a user in this implementation's words.
func (a *demoAPI) userJSON(u *demoUser) map[string]any {
	roles := slices.Clone(u.Roles)
	slices.Sort(roles)
	m := map[string]any{"id": u.ID, "email": u.Email, "balance": u.Balance}
	if a.flavor == "old" {
		m["user_name"] = u.Name
		m["roles"] = roles
		m["updated_at"] = u.Updated.Format(time.RFC3339Nano)
		return m
	}
	m["username"] = u.Name
	slices.Reverse(roles)
	m["roles"] = roles
	m["balance"] = json.Number(strconv.FormatFloat(u.Balance, 'f', 2, 64)) // 12.50, not 12.5
	m["updated_at"] = u.Updated.Format(time.RFC3339)
	m["links"] = map[string]string{"self": fmt.Sprintf("/users/%d", u.ID)}
	return m
}

func (a *demoAPI) orderJSON(o *demoOrder) map[string]any {
	var total float64
	for _, it := range o.Items {
		total += float64(it.Qty) * it.Price
	}
	if a.flavor == "old" || o.Discount == 0 {
		// The bug: the new implementation forgets the discount.
		total -= o.Discount
	}
	return map[string]any{
		"id": o.ID, "user_id": o.UserID, "items": o.Items, "discount": o.Discount,
		"total": json.Number(strconv.FormatFloat(round2(total), 'f', -1, 64)), "updated_at": o.Updated.Format(time.RFC3339Nano),
	}
}

func round2(f float64) float64 {
	return float64(int64(f*100+0.5)) / 100
}

func (a *demoAPI) getUser(w http.ResponseWriter, r *http.Request) {
	id, ok := a.id(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	u := a.users[id]
	var body map[string]any
	if u != nil {
		body = a.userJSON(u)
	}
	a.mu.Unlock()
	if u == nil {
		a.fail(w, http.StatusNotFound, "no such user")
		return
	}
	a.send(w, body)
}

func (a *demoAPI) putUser(w http.ResponseWriter, r *http.Request) {
	id, ok := a.id(w, r)
	if !ok {
		return
	}
	var in struct {
		Name    string   `json:"name"`
		Email   string   `json:"email"`
		Roles   []string `json:"roles"`
		Balance float64  `json:"balance"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" {
		a.fail(w, http.StatusBadRequest, "send {\"name\": ..., \"email\": ..., \"roles\": [...]}")
		return
	}
	a.mu.Lock()
	u := &demoUser{ID: id, Name: in.Name, Email: in.Email, Roles: in.Roles, Balance: in.Balance, Updated: a.now()}
	a.users[id] = u
	body := a.userJSON(u)
	a.mu.Unlock()
	a.send(w, body)
}

func (a *demoAPI) deleteUser(w http.ResponseWriter, r *http.Request) {
	id, ok := a.id(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	delete(a.users, id)
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (a *demoAPI) getOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := a.id(w, r)
	if !ok {
		return
	}
	a.mu.Lock()
	o := a.orders[id]
	var body map[string]any
	if o != nil {
		body = a.orderJSON(o)
	}
	a.mu.Unlock()
	if o == nil {
		a.fail(w, http.StatusNotFound, "no such order")
		return
	}
	a.send(w, body)
}

func (a *demoAPI) putOrder(w http.ResponseWriter, r *http.Request) {
	id, ok := a.id(w, r)
	if !ok {
		return
	}
	var in demoOrder
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || len(in.Items) == 0 {
		a.fail(w, http.StatusBadRequest, "send {\"user_id\": ..., \"items\": [...], \"discount\": ...}")
		return
	}
	a.mu.Lock()
	in.ID, in.Updated = id, a.now()
	a.orders[id] = &in
	body := a.orderJSON(&in)
	a.mu.Unlock()
	a.send(w, body)
}

func (a *demoAPI) search(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Prefix string `json:"prefix"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		a.fail(w, http.StatusBadRequest, "send {\"prefix\": \"a\"}")
		return
	}
	start := a.now()
	a.mu.Lock()
	var results []map[string]any
	for _, u := range a.users {
		if strings.HasPrefix(u.Name, in.Prefix) {
			results = append(results, map[string]any{"id": u.ID, "name": u.Name})
		}
	}
	a.mu.Unlock()
	slices.SortFunc(results, func(x, y map[string]any) int { return x["id"].(int) - y["id"].(int) })
	out := map[string]any{"results": results, "count": len(results)}
	if a.flavor == "new" {
		out["took_ms"] = a.now().Sub(start).Milliseconds()
	}
	a.send(w, out)
}
