package kubernetes_test

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is what the tests need to know of ../../Dockerfile.
type dockerfile struct {
	stages     []string // FROM lines
	runs       []string
	env        map[string]string
	expose     map[int32]bool
	user       string
	entrypoint []string // exec form only
	cmd        []string
}

// readDockerfile parses the Dockerfile's instructions: enough of the
// syntax for this one file (continuations, comments, exec and shell forms).
func readDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := &dockerfile{env: map[string]string{}, expose: map[int32]bool{}}
	var lines []string
	var cont strings.Builder
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && cont.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cont.WriteString(s + " ")
			continue
		}
		cont.WriteString(line)
		lines = append(lines, cont.String())
		cont.Reset()
	}
	for _, l := range lines {
		instr, args, _ := strings.Cut(l, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "FROM":
			d.stages = append(d.stages, args)
		case "RUN":
			d.runs = append(d.runs, args)
		case "ENV":
			for _, kv := range strings.Fields(args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("ENV %q: write KEY=value", args)
				}
				d.env[k] = v
			}
		case "EXPOSE":
			for _, p := range strings.Fields(args) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Fatalf("EXPOSE %q: %v", p, err)
				}
				d.expose[int32(n)] = true
			}
		case "USER":
			d.user = args
		case "ENTRYPOINT", "CMD":
			var form []string
			if err := json.Unmarshal([]byte(args), &form); err != nil {
				t.Errorf("%s %s is in shell form: the distroless image has no shell", instr, args)
			}
			if strings.ToUpper(instr) == "CMD" {
				d.cmd = form
			} else {
				d.entrypoint = form
			}
		}
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	if len(d.stages) != 2 {
		t.Fatalf("want a build stage and a runtime stage, got %v", d.stages)
	}
	if runtime := d.stages[1]; !strings.HasPrefix(runtime, "gcr.io/distroless/static") || !strings.HasSuffix(runtime, ":nonroot") {
		t.Errorf("runtime stage %q: want distroless static, nonroot", runtime)
	}
	built := false
	for _, r := range d.runs {
		built = built || strings.Contains(r, "deploy/build.sh")
	}
	if !built {
		t.Error("the image must be built by deploy/build.sh, the script CI runs")
	}
	if d.user != "65532:65532" {
		t.Errorf("USER %q: want the distroless nonroot user by number (65532:65532), so runAsNonRoot can check it", d.user)
	}
	if len(d.entrypoint) != 1 || d.entrypoint[0] != "/usr/local/bin/cutover" || strings.Join(d.cmd, " ") != "serve" {
		t.Errorf("ENTRYPOINT %v CMD %v: want cutover as PID 1 running serve", d.entrypoint, d.cmd)
	}
	for _, k := range []string{"CUTOVER_CONFIG", "CUTOVER_DATA_DIR"} {
		if d.env[k] == "" {
			t.Errorf("ENV %s is not set", k)
		}
	}
	if !d.expose[8080] || !d.expose[9090] {
		t.Errorf("EXPOSE %v: want the proxy and admin ports", d.expose)
	}
}
