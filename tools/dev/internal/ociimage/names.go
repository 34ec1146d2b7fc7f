package ociimage

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// maxManifestFile bounds the index.json or manifest.json read from a
// tarball: they list a few images, never megabytes.
const maxManifestFile = 1 << 20

// TarballNames returns the image names a tarball carries, without
// extracting it: the names on the entries of an OCI layout's index.json
// (containerd's full reference, else the OCI ref name), or the RepoTags of
// a docker-style tarball's manifest.json.
func TarballNames(tarPath string) ([]string, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s has neither index.json nor manifest.json", tarPath)
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", tarPath, err)
		}
		switch path.Clean(h.Name) {
		case "index.json":
			var idx struct {
				Manifests []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := decodeBounded(tr, &idx); err != nil {
				return nil, fmt.Errorf("%s: index.json: %w", tarPath, err)
			}
			var names []string
			for _, m := range idx.Manifests {
				if n := m.Annotations[AnnotationImageName]; n != "" {
					names = append(names, n)
				} else if n := m.Annotations[AnnotationRefName]; n != "" {
					names = append(names, n)
				}
			}
			return names, nil
		case "manifest.json":
			var ms []struct {
				RepoTags []string `json:"RepoTags"`
			}
			if err := decodeBounded(tr, &ms); err != nil {
				return nil, fmt.Errorf("%s: manifest.json: %w", tarPath, err)
			}
			var names []string
			for _, m := range ms {
				names = append(names, m.RepoTags...)
			}
			return names, nil
		}
	}
}

func decodeBounded(r io.Reader, v any) error {
	return json.NewDecoder(io.LimitReader(r, maxManifestFile)).Decode(v)
}
