// Tests of the deployment files in deploy/: the systemd unit (checked
// against the configuration defaults, then by systemd-analyze verify and
// security when systemd is installed), the sysusers file, the container
// image's build command (run here: it must give a static, stripped binary)
// and the Kubernetes manifest (its documents parse and its configuration
// validates with package config).
package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tcptap/tcptap/config"
)

// The repository root, from this package's directory.
const root = ".."

// inCI reports whether the test runs in CI, where the tools it would
// otherwise skip without are required.
func inCI() bool { return os.Getenv("CI") != "" }

// needTool returns the path of a tool, skipping the test without it
// (failing in CI).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if inCI() {
			t.Fatalf("%s is not installed (CI installs the systemd package for it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// unit is a parsed systemd unit file: section → key → values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, data []byte) unit {
	t.Helper()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		case strings.HasSuffix(line, `\`):
			t.Fatalf("line %d: continuation lines are not expected", n)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: not a key=value in a section: %q", n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the single value of a key.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Errorf("[%s] %s: %d values %q, want one", section, key, len(vs), vs)
		return ""
	}
	return vs[0]
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestSystemdUnit checks the hardening of deploy/tcptap.service and that its
// paths are the configuration's defaults.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, readFile(t, "tcptap.service"))
	def := config.Default()

	want := map[string]string{
		"Type":                    "simple",
		"Restart":                 "always",
		"ExecReload":              "/bin/kill -HUP $MAINPID",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectKernelLogs":       "yes",
		"ProtectControlGroups":    "yes",
		"RestrictNamespaces":      "yes",
		"LockPersonality":         "yes",
		"MemoryDenyWriteExecute":  "yes",
		"SystemCallArchitectures": "native",
		"RuntimeDirectoryMode":    "0750",
		"ExecStart":               "/usr/local/bin/tcptap run --config " + config.DefaultFile,
	}
	for k, v := range want {
		if got := u.one(t, "Service", k); got != v {
			t.Errorf("[Service] %s=%s, want %s", k, got, v)
		}
	}

	// A static, unprivileged user (DynamicUser's changing UID could not
	// own the configuration directory that 'trace persist' writes).
	user := u.one(t, "Service", "User")
	if user == "" || user == "root" || user == "0" {
		t.Errorf("User=%q: want a dedicated unprivileged user", user)
	}
	if d := u["Service"]["DynamicUser"]; len(d) > 0 {
		t.Errorf("DynamicUser=%q: the configuration directory must belong to a fixed user", d)
	}

	// CAP_NET_RAW for capture, and CAP_NET_BIND_SERVICE because the
	// default snmp.listen is port 161 (docs/trace.md); nothing else.
	wantCaps := []string{"CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
	for _, k := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
		if got := strings.Fields(u.one(t, "Service", k)); !slices.Equal(got, wantCaps) {
			t.Errorf("%s=%q, want %q", k, got, wantCaps)
		}
	}

	families := strings.Fields(u.one(t, "Service", "RestrictAddressFamilies"))
	slices.Sort(families)
	if wantFam := []string{"AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"}; !slices.Equal(families, wantFam) {
		t.Errorf("RestrictAddressFamilies=%q, want %q", families, wantFam)
	}

	// The directories systemd makes are the configuration's defaults.
	dirs := []struct{ key, base, path string }{
		{"RuntimeDirectory", "/run", filepath.Dir(def.Control.Socket)},
		{"StateDirectory", "/var/lib", def.SNMP.StateDir},
		{"ConfigurationDirectory", "/etc", filepath.Dir(config.DefaultFile)},
	}
	for _, d := range dirs {
		if got := filepath.Join(d.base, u.one(t, "Service", d.key)); got != d.path {
			t.Errorf("%s makes %s, but the default is %s", d.key, got, d.path)
		}
	}
	// ProtectSystem=strict leaves the configuration directory read-only;
	// 'trace persist' creates a temporary file there and renames it.
	if rw := strings.Fields(strings.Join(u["Service"]["ReadWritePaths"], " ")); !slices.Contains(rw, filepath.Dir(config.DefaultFile)) {
		t.Errorf("ReadWritePaths=%q lacks %s, where 'trace persist' writes", rw, filepath.Dir(config.DefaultFile))
	}

	// The user comes from the sysusers file.
	if !regexp.MustCompile(`(?m)^u\s+` + regexp.QuoteMeta(user) + `\s`).Match(readFile(t, "tcptap.sysusers")) {
		t.Errorf("tcptap.sysusers does not create the user %s", user)
	}
}

// TestSystemdAnalyze runs systemd-analyze verify on the unit (its ExecStart
// pointed at a freshly built binary, which verify requires to exist) and
// systemd-analyze security --offline, which must rate it at most 2.5.
func TestSystemdAnalyze(t *testing.T) {
	analyze := needTool(t, "systemd-analyze")
	bin := buildImageBinary(t)
	data := readFile(t, "tcptap.service")
	const exec0 = "ExecStart=/usr/local/bin/tcptap "
	if !bytes.Contains(data, []byte("\n"+exec0)) {
		t.Fatalf("no %q line", exec0)
	}
	data = bytes.Replace(data, []byte("\n"+exec0), []byte("\nExecStart="+bin+" "), 1)
	dir := t.TempDir()
	unitPath := filepath.Join(dir, "tcptap.service")
	if err := os.WriteFile(unitPath, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// verify exits 0 on unknown keys and bad values, which it only
	// reports: any line about the unit fails the test.
	out, err := exec.Command(analyze, "verify", "--man=no", unitPath).CombinedOutput()
	t.Logf("systemd-analyze verify:\n%s", out)
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "tcptap.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}

	out, err = exec.Command(analyze, "security", "--offline=true", unitPath).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for tcptap\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		if err != nil && bytes.Contains(out, []byte("offline")) {
			t.Skipf("systemd-analyze security --offline is not supported here: %s", out)
		}
		t.Fatalf("systemd-analyze security: no exposure level (%v):\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security exposure: %.1f", score)
	if score > 2.5 {
		t.Errorf("exposure %.1f, want at most 2.5:\n%s", score, out)
	}
}

// TestSysusers creates the user from tcptap.sysusers in an empty root.
func TestSysusers(t *testing.T) {
	sysusers := needTool(t, "systemd-sysusers")
	if os.Geteuid() != 0 {
		t.Skip("systemd-sysusers --root needs root")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := filepath.Abs("tcptap.sysusers")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sysusers, "--root="+dir, conf).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd := string(readFile(t, filepath.Join(dir, "etc", "passwd")))
	if !regexp.MustCompile(`(?m)^tcptap:x:\d+:\d+:[^:]*:/var/lib/tcptap:/usr/sbin/nologin$`).MatchString(passwd) {
		t.Errorf("passwd:\n%s", passwd)
	}
}

// containerfile is deploy/Containerfile split into instructions, with
// continuation lines joined.
func containerfile(t *testing.T) [][2]string {
	t.Helper()
	var ins [][2]string
	var cur strings.Builder
	for _, line := range strings.Split(string(readFile(t, "Containerfile")), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(cur.String(), " ")
		ins = append(ins, [2]string{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return ins
}

const testVersion = "v0.0.0-deploy-test"

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildDir  string
)

// buildImageBinary runs the Containerfile's go build command, with the
// environment its build stage sets, and returns the binary's path.
func buildImageBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "tcptap-deploy-test-")
		if buildErr != nil {
			return
		}
		env := map[string]string{"VERSION": testVersion}
		var cmd string
		for _, in := range containerfile(t) {
			switch in[0] {
			case "FROM": // a new stage: its own environment
				clear(env)
				env["VERSION"] = testVersion
			case "ENV":
				k, v, _ := strings.Cut(in[1], "=")
				env[k] = v
			case "RUN":
				if strings.Contains(in[1], "go build") {
					cmd = in[1]
				}
			}
			if cmd != "" {
				break
			}
		}
		if cmd == "" {
			buildErr = errors.New("the Containerfile has no RUN go build")
			return
		}
		if env["CGO_ENABLED"] != "0" {
			buildErr = fmt.Errorf("the build stage sets CGO_ENABLED=%q, want 0 (a static binary)", env["CGO_ENABLED"])
			return
		}
		// The image's /out is the temporary directory here.
		cmd = strings.ReplaceAll(cmd, " /out/", " "+buildDir+"/out/")
		c := exec.Command("sh", "-c", cmd)
		c.Dir = root
		c.Env = os.Environ()
		for k, v := range env {
			c.Env = append(c.Env, k+"="+v)
		}
		if out, err := c.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", cmd, err, out)
			return
		}
		buildBin = filepath.Join(buildDir, "out", "usr", "local", "bin", "tcptap")
	})
	if buildErr != nil {
		t.Fatalf("building as the Containerfile does: %v", buildErr)
	}
	return buildBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// TestContainerfile checks the image definition and that its build command
// gives a static, stripped, path-free binary of the right version.
func TestContainerfile(t *testing.T) {
	ins := containerfile(t)
	var froms []string
	var final [][2]string
	for _, in := range ins {
		if in[0] == "FROM" {
			froms = append(froms, in[1])
			final = nil
		}
		final = append(final, in)
	}
	if len(froms) < 2 || !strings.Contains(froms[0], "golang:") {
		t.Errorf("FROM %q: want a golang build stage and a final stage", froms)
	}
	if last := froms[len(froms)-1]; !strings.Contains(last, "distroless/static") && last != "scratch" {
		t.Errorf("final stage FROM %s: want distroless/static or scratch", last)
	}
	var user, entry string
	var copied []string
	for _, in := range final {
		switch in[0] {
		case "USER":
			user = in[1]
		case "ENTRYPOINT":
			entry = in[1]
		case "COPY":
			copied = append(copied, in[1])
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("final stage USER %q: want a non-root user", user)
	}
	if !strings.Contains(entry, `"/usr/local/bin/tcptap"`) {
		t.Errorf("ENTRYPOINT %s: want /usr/local/bin/tcptap", entry)
	}
	if !slices.ContainsFunc(copied, func(s string) bool { return strings.HasSuffix(s, " /usr/local/bin/tcptap") }) ||
		!slices.ContainsFunc(copied, func(s string) bool { return strings.HasSuffix(s, " "+filepath.Dir(config.DefaultFile)) }) {
		t.Errorf("the final stage copies %q: want the binary and %s", copied, filepath.Dir(config.DefaultFile))
	}
	var buildCmd string
	for _, in := range ins {
		if in[0] == "RUN" && strings.Contains(in[1], "go build") {
			buildCmd = in[1]
		}
	}
	for _, flag := range []string{"-trimpath", "-s -w", "-X main.version=${VERSION}"} {
		if !strings.Contains(buildCmd, flag) {
			t.Errorf("go build command %q lacks %s", buildCmd, flag)
		}
	}

	bin := buildImageBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP header: it is dynamically linked")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q (%v)", libs, err)
	}
	if _, err := f.Symbols(); !errors.Is(err, elf.ErrNoSymbols) {
		t.Errorf("the binary has a symbol table (err %v): -s did not strip it", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	data := readFile(t, bin)
	if bytes.Contains(data, []byte(abs+"/")) {
		t.Errorf("the binary contains the build path %s: -trimpath did not apply", abs)
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "tcptap "+testVersion {
		t.Errorf("tcptap version: %q (%v), want tcptap %s", out, err, testVersion)
	}
}

// k8s is the part of the Kubernetes objects the test reads.
type k8s struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	HostNetwork     bool              `yaml:"hostNetwork"`
	DNSPolicy       string            `yaml:"dnsPolicy"`
	NodeSelector    map[string]string `yaml:"nodeSelector"`
	Tolerations     []map[string]any  `yaml:"tolerations"`
	SecurityContext struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    *int  `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers []struct {
		Name string   `yaml:"name"`
		Args []string `yaml:"args"`
		Env  []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		SecurityContext struct {
			Capabilities struct {
				Add  []string `yaml:"add"`
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
		ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string         `yaml:"name"`
		EmptyDir  map[string]any `yaml:"emptyDir"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

// k8sProbe is a container probe.
type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// quantity parses a Kubernetes memory quantity with a binary suffix.
func quantity(t *testing.T, s string) int64 {
	t.Helper()
	for i, suf := range []string{"Ki", "Mi", "Gi"} {
		if n, ok := strings.CutSuffix(s, suf); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("quantity %q: %v", s, err)
			}
			return v << (10 * (i + 1))
		}
	}
	t.Fatalf("quantity %q: want a Ki, Mi or Gi suffix", s)
	return 0
}

// TestKubernetesDaemonSet parses deploy/kubernetes/daemonset.yaml, validates
// the configuration in its ConfigMap and checks the pod's privileges,
// volumes and memory against it.
func TestKubernetesDaemonSet(t *testing.T) {
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, filepath.Join("kubernetes", "daemonset.yaml"))))
	objs := map[string]k8s{}
	for {
		var o k8s
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("daemonset.yaml: %v", err)
		}
		if o.Kind == "" {
			t.Fatal("daemonset.yaml: a document without kind")
		}
		objs[o.Kind] = o
	}
	ns, cm, ds := objs["Namespace"], objs["ConfigMap"], objs["DaemonSet"]
	if ds.Kind == "" || cm.Kind == "" {
		t.Fatalf("want a ConfigMap and a DaemonSet, got %d objects", len(objs))
	}
	if ns.Kind != "" && (cm.Metadata.Namespace != ns.Metadata.Name || ds.Metadata.Namespace != ns.Metadata.Name) {
		t.Errorf("objects not in namespace %s", ns.Metadata.Name)
	}

	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork || pod.DNSPolicy != "ClusterFirstWithHostNet" {
		t.Errorf("hostNetwork %v, dnsPolicy %q: want the host network with ClusterFirstWithHostNet", pod.HostNetwork, pod.DNSPolicy)
	}
	if len(pod.NodeSelector) == 0 || len(pod.Tolerations) == 0 {
		t.Error("want a nodeSelector and a toleration for the sensor nodes")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || !slices.Equal(sc.Capabilities.Add, []string{"NET_RAW"}) {
		t.Errorf("capabilities drop %q add %q: want drop ALL, add NET_RAW", sc.Capabilities.Drop, sc.Capabilities.Add)
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	if !isTrue(sc.RunAsNonRoot) || !isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("securityContext: want runAsNonRoot, readOnlyRootFilesystem and no privilege escalation")
	}
	if u := pod.SecurityContext.RunAsUser; u == nil || *u == 0 {
		t.Error("the pod's runAsUser: want the image's non-root user")
	}

	// The configuration file: the ConfigMap key the args name.
	i := slices.Index(c.Args, "--config")
	if len(c.Args) == 0 || c.Args[0] != "run" || i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("args %q: want run --config FILE", c.Args)
	}
	file := c.Args[i+1]
	mounts := map[string]string{} // mount path → volume
	readOnly := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath], readOnly[m.MountPath] = m.Name, m.ReadOnly
	}
	volumes := map[string]int{}
	for i, v := range pod.Volumes {
		volumes[v.Name] = i
	}
	vol := func(path string) (int, bool) {
		name, ok := mounts[path]
		if !ok {
			return 0, false
		}
		i, ok := volumes[name]
		return i, ok
	}
	if vi, ok := vol(filepath.Dir(file)); !ok || pod.Volumes[vi].ConfigMap == nil || pod.Volumes[vi].ConfigMap.Name != cm.Metadata.Name {
		t.Errorf("%s is not the ConfigMap %s", filepath.Dir(file), cm.Metadata.Name)
	}
	text, ok := cm.Data[filepath.Base(file)]
	if !ok {
		t.Fatalf("the ConfigMap has no key %s", filepath.Base(file))
	}
	cfg, err := config.Decode([]byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's configuration: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the ConfigMap's configuration: %v", err)
	}
	if err := cfg.Capture.RequireInterfaces(); err != nil {
		t.Error(err)
	}
	// The daemon writes the control socket and the SNMP state: both on
	// writable volumes (the root file system is read-only).
	for _, dir := range []string{filepath.Dir(cfg.Control.Socket), cfg.SNMP.StateDir} {
		if vi, ok := vol(dir); !ok || pod.Volumes[vi].EmptyDir == nil || readOnly[dir] {
			t.Errorf("%s: want a writable emptyDir volume mounted there", dir)
		}
	}

	// Memory: the Go heap (GOMEMLIMIT) holds the trace quota, the tracked
	// connections (about 2 KiB each, trace.max_connections) and 64 MiB for
	// the rest; the limit adds the capture rings.
	if cfg.Capture.Workers <= 0 {
		t.Fatalf("capture.workers %d: set it, the ring memory is per worker", cfg.Capture.Workers)
	}
	quota, err := cfg.Trace.QuotaBytes()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := cfg.Capture.RingBytes()
	if err != nil {
		t.Fatal(err)
	}
	heap := quota + int64(cfg.Trace.MaxConnections)*2048 + 64<<20
	rings := ring * int64(cfg.Capture.Workers*len(cfg.Capture.Interfaces))
	var goMemLimit int64
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			if goMemLimit, err = config.ParseSize(e.Value); err != nil {
				t.Fatalf("GOMEMLIMIT %q: %v", e.Value, err)
			}
		}
	}
	limit := quantity(t, c.Resources.Limits["memory"])
	t.Logf("heap needs %d MiB, GOMEMLIMIT %d MiB, rings %d MiB, limit %d MiB", heap>>20, goMemLimit>>20, rings>>20, limit>>20)
	if goMemLimit < heap {
		t.Errorf("GOMEMLIMIT %d MiB is below the heap the configuration needs, %d MiB", goMemLimit>>20, heap>>20)
	}
	if limit < goMemLimit+rings {
		t.Errorf("memory limit %d MiB is below GOMEMLIMIT + rings, %d MiB", limit>>20, (goMemLimit+rings)>>20)
	}
	if req := c.Resources.Requests["memory"]; req == "" || quantity(t, req) != limit {
		t.Errorf("memory request %q: want it equal to the limit", req)
	}
	// Probes: liveness on /healthz, readiness on /readyz, on the port
	// exporter.listen serves (the host network: the node's address, where
	// the probe paths are served whatever exporter.api says).
	_, port, _ := strings.Cut(cfg.Exporter.Listen, ":")
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s: want an httpGet of %s", p.name, p.path)
			continue
		}
		got := fmt.Sprint(p.probe.HTTPGet.Port)
		for _, cp := range c.Ports {
			if cp.Name == got {
				got = strconv.Itoa(cp.ContainerPort)
			}
		}
		if got != port {
			t.Errorf("%s port %s: exporter.listen serves %s", p.name, got, port)
		}
	}
	if _, ok := c.Resources.Limits["cpu"]; ok {
		t.Error("a CPU limit throttles the capture workers into kernel drops")
	}
}

// TestContainerfileRunExample: the Containerfile's docker run example, run
// as the image's non-root user with only NET_RAW, must not need a port
// below 1024: its environment moves the SNMP agent (default 127.0.0.1:161)
// above 1023, and the configuration it gives validates.
func TestContainerfileRunExample(t *testing.T) {
	text := string(readFile(t, "Containerfile"))
	i := strings.Index(text, "docker run")
	if i < 0 {
		t.Fatal("no docker run example in the Containerfile")
	}
	example := text[i:]
	example = example[:strings.Index(example, "\n#\n")]
	if strings.Contains(example, "NET_BIND_SERVICE") {
		t.Skip("the example grants NET_BIND_SERVICE")
	}
	env := map[string]string{}
	for _, m := range regexp.MustCompile(`-e (TCPTAP_[A-Z_]+)=(\S+)`).FindAllStringSubmatch(example, -1) {
		env[m[1]] = m[2]
	}
	cfg := config.Default()
	if v, ok := env["TCPTAP_SNMP_LISTEN"]; ok {
		cfg.SNMP.Listen = strings.Split(v, ",")
	}
	if v, ok := env["TCPTAP_CAPTURE_INTERFACES"]; ok {
		cfg.Capture.Interfaces = strings.Split(v, ",")
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the example's configuration: %v", err)
	}
	if err := cfg.Capture.RequireInterfaces(); err != nil {
		t.Error(err)
	}
	for _, l := range cfg.SNMP.Listen {
		_, port, err := net.SplitHostPort(l)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 1024 {
			t.Errorf("snmp.listen %s in the docker run example: a port below 1024 needs NET_BIND_SERVICE, which the example does not add", l)
		}
	}
}
