package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/livehook/terraform-provider-livehook/archiver/server"
)

// k8sObject is the part of a manifest these checks read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		ServiceName string           `yaml:"serviceName"`
		ClusterIP   string           `yaml:"clusterIP"`
		Selector    yaml.Node        `yaml:"selector"`
		Ports       []k8sServicePort `yaml:"ports"`
		Template    k8sPodTemplate   `yaml:"template"`
	} `yaml:"spec"`
}

type k8sServicePort struct {
	Name       string `yaml:"name"`
	TargetPort string `yaml:"targetPort"`
}

type k8sPodTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
		Containers                    []struct {
			Name  string   `yaml:"name"`
			Args  []string `yaml:"args"`
			Ports []struct {
				Name string `yaml:"name"`
			} `yaml:"ports"`
			ReadinessProbe k8sProbe `yaml:"readinessProbe"`
			LivenessProbe  k8sProbe `yaml:"livenessProbe"`
		} `yaml:"containers"`
	} `yaml:"spec"`
}

type k8sProbe struct {
	HTTPGet struct {
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

func readExample(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", "archiver", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkServe: the flags parse, verify signatures from a keys file (never --allow-unsigned), sign
// digests, and keep /metrics and /readyz off the callback port.
func checkServe(t *testing.T, where string, args []string) server.Config {
	t.Helper()
	c, err := server.ParseFlags(args, io.Discard)
	if err != nil {
		t.Errorf("%s: archiver serve %v: %v", where, args, err)
	}
	if c.Keys == "" || c.AllowUnsigned {
		t.Errorf("%s: archiver serve %v: want --keys and no --allow-unsigned", where, args)
	}
	if c.Digest.Key == "" {
		t.Errorf("%s: no --digest-key: the archive would not be verifiable", where)
	}
	if c.AdminListen == "" {
		t.Errorf("%s: no --admin-listen: /metrics and /readyz would face the senders", where)
	}
	return c
}

// TestKubernetesExamples: each directory under examples/archiver/kubernetes is one workload that
// works as applied (`kubectl apply -f DIR`): its Services select its pods and name their ports, a
// StatefulSet's serviceName is a headless Service in the same directory, the archiver's flags
// parse and are secure, and the probes use the admin port.
func TestKubernetesExamples(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"spool", "store"} {
		t.Run(dir, func(t *testing.T) {
			t.Parallel()
			files, _ := filepath.Glob(filepath.Join("..", "examples", "archiver", "kubernetes", dir, "*.yaml"))
			var objs []k8sObject
			text := ""
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				text += string(b)
				dec := yaml.NewDecoder(strings.NewReader(string(b)))
				for {
					var o k8sObject
					if err := dec.Decode(&o); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						t.Fatalf("%s: %v", f, err)
					}
					objs = append(objs, o)
				}
			}
			var workloads []k8sObject
			services := map[string]k8sObject{}
			for _, o := range objs {
				switch o.Kind {
				case "Deployment", "StatefulSet", "DaemonSet":
					workloads = append(workloads, o)
				case "Service":
					services[o.Metadata.Name] = o
				}
			}
			if len(workloads) != 1 {
				t.Fatalf("%d workloads in kubernetes/%s, want exactly 1 (kubectl apply -f creates all of them)", len(workloads), dir)
			}
			w := workloads[0]
			want := map[string]string{"spool": "StatefulSet", "store": "Deployment"}[dir]
			if w.Kind != want {
				t.Errorf("kubernetes/%s holds a %s, want a %s", dir, w.Kind, want)
			}
			if w.Kind == "StatefulSet" {
				if s, ok := services[w.Spec.ServiceName]; !ok || s.Spec.ClusterIP != "None" {
					t.Errorf("StatefulSet serviceName %q is not a headless Service in kubernetes/%s", w.Spec.ServiceName, dir)
				}
			}
			podLabels := w.Spec.Template.Metadata.Labels
			ports := map[string]bool{}
			archivers := 0
			for _, c := range w.Spec.Template.Spec.Containers {
				for _, p := range c.Ports {
					ports[p.Name] = true
				}
				if c.Name != "archiver" {
					continue
				}
				archivers++
				if len(c.Args) > 0 && c.Args[0] == "serve" {
					t.Errorf("args start with serve, but the image's entrypoint is already `archiver serve`")
				}
				cfg := checkServe(t, "kubernetes/"+dir, c.Args)
				if (cfg.Ack == server.AckSpool) != (w.Kind == "StatefulSet") {
					t.Errorf("a %s with --ack %s", w.Kind, cfg.Ack)
				}
				if c.ReadinessProbe.HTTPGet.Port != "admin" || c.LivenessProbe.HTTPGet.Port != "admin" {
					t.Errorf("probes on ports %q/%q, want admin", c.ReadinessProbe.HTTPGet.Port, c.LivenessProbe.HTTPGet.Port)
				}
				if grace := w.Spec.Template.Spec.TerminationGracePeriodSeconds; time.Duration(grace)*time.Second <= cfg.ShutdownTimeout {
					t.Errorf("terminationGracePeriodSeconds %d is not above --shutdown-timeout %s", grace, cfg.ShutdownTimeout)
				}
			}
			if archivers != 1 {
				t.Fatalf("%d archiver containers", archivers)
			}
			for name, s := range services {
				var sel map[string]string
				if err := s.Spec.Selector.Decode(&sel); err != nil || len(sel) == 0 {
					t.Errorf("Service %s has no selector", name)
				}
				for k, v := range sel {
					if podLabels[k] != v {
						t.Errorf("Service %s selects %s=%s, which the pods do not carry (%v)", name, k, v, podLabels)
					}
				}
				for _, p := range s.Spec.Ports {
					if !ports[p.TargetPort] {
						t.Errorf("Service %s port %s targets %q, not a container port", name, p.Name, p.TargetPort)
					}
				}
			}
			for _, want := range []string{"defaultMode: 0400", "install -m 0600", "medium: Memory", "runAsNonRoot: true"} {
				if !strings.Contains(text, want) {
					t.Errorf("kubernetes/%s lacks %q", dir, want)
				}
			}
		})
	}
	// The top-level files are not a second workload.
	top, _ := filepath.Glob(filepath.Join("..", "examples", "archiver", "kubernetes", "*.yaml"))
	for _, f := range top {
		b, _ := os.ReadFile(f)
		for _, kind := range []string{"kind: Deployment", "kind: StatefulSet"} {
			if strings.Contains(string(b), kind) {
				t.Errorf("%s holds a %s: workloads go in spool/ or store/", f, kind)
			}
		}
	}
}

// TestSystemdExample: the unit's archiver serve is secure and provable as shipped, with the
// files owner-only and systemd's stop timeout above the archiver's shutdown timeout.
func TestSystemdExample(t *testing.T) {
	t.Parallel()
	unit := readExample(t, "systemd/livehook-archiver.service")
	exec, stop := "", ""
	for _, l := range strings.Split(strings.ReplaceAll(unit, "\\\n", " "), "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			exec = v
		}
		if v, ok := strings.CutPrefix(l, "TimeoutStopSec="); ok {
			stop = v
		}
	}
	fields := strings.Fields(exec)
	if len(fields) < 3 || fields[1] != "serve" {
		t.Fatalf("systemd unit: ExecStart %q does not run archiver serve", exec)
	}
	cfg := checkServe(t, "systemd/livehook-archiver.service", fields[2:])
	if s, err := strconv.Atoi(stop); err != nil || time.Duration(s)*time.Second <= cfg.ShutdownTimeout {
		t.Errorf("TimeoutStopSec=%s is not above --shutdown-timeout %s", stop, cfg.ShutdownTimeout)
	}
	for _, want := range []string{"UMask=0077", "install -m 0600 -o livehook -g livehook keys.json", "install -m 0600 -o livehook -g livehook digest-key.pem", "ExecReload=/bin/kill -HUP"} {
		if !strings.Contains(unit, want) {
			t.Errorf("systemd unit lacks %q", want)
		}
	}
}
