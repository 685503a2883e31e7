// Command argocd-health runs a resource_customizations health check the way
// Argo CD does: every case of <dir>/health_test.yaml goes through Argo CD's own
// util/lua package, once as an argocd-cm override (the path a user's
// `resource.customizations` takes, standard libraries off) and once as a
// built-in script (standard libraries on, as upstream's own tests run them).
//
//	argocd-health <dir>    exit 0 when every case returns the expected status and message
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/argoproj/argo-cd/gitops-engine/v3/pkg/health"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v3/util/lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

type testCase struct {
	InputPath    string              `json:"inputPath"`
	HealthStatus health.HealthStatus `json:"healthStatus"`
}

func readYAML(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return yaml.Unmarshal(data, into)
}

func run(dir string) (int, error) {
	script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
	if err != nil {
		return 0, err
	}
	var suite struct {
		Tests []testCase `json:"tests"`
	}
	if err := readYAML(filepath.Join(dir, "health_test.yaml"), &suite); err != nil {
		return 0, err
	}
	if len(suite.Tests) == 0 {
		return 0, fmt.Errorf("%s/health_test.yaml lists no tests", dir)
	}
	failures := 0
	for _, tc := range suite.Tests {
		obj := &unstructured.Unstructured{}
		if err := readYAML(filepath.Join(dir, tc.InputPath), &obj.Object); err != nil {
			return 0, fmt.Errorf("%s: %w", tc.InputPath, err)
		}
		overrides := lua.ResourceHealthOverrides{
			lua.GetConfigMapKey(obj.GroupVersionKind()): v1alpha1.ResourceOverride{HealthLua: string(script)},
		}
		asOverride, err := overrides.GetResourceHealth(obj)
		if err != nil {
			return 0, fmt.Errorf("%s (argocd-cm override): %w", tc.InputPath, err)
		}
		asBuiltIn, err := lua.VM{UseOpenLibs: true}.ExecuteHealthLua(obj, string(script))
		if err != nil {
			return 0, fmt.Errorf("%s (built-in): %w", tc.InputPath, err)
		}
		for mode, got := range map[string]*health.HealthStatus{"argocd-cm override": asOverride, "built-in": asBuiltIn} {
			if got == nil || *got != tc.HealthStatus {
				failures++
				fmt.Printf("FAIL %s (%s)\n  expected: %+v\n  got:      %+v\n", tc.InputPath, mode, tc.HealthStatus, got)
			}
		}
		if *asOverride == tc.HealthStatus && *asBuiltIn == tc.HealthStatus {
			fmt.Printf("ok   %s: %s\n", tc.InputPath, tc.HealthStatus.Status)
		}
	}
	return failures, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health <resource_customizations/group/Kind directory>")
		os.Exit(2)
	}
	failures, err := run(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	if failures > 0 {
		fmt.Printf("%d case(s) failed\n", failures)
		os.Exit(1)
	}
}
