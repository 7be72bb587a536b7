package server

import "os"

func openArtifact(path string) (*os.File, error) { return os.Open(path) }

func statArtifact(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
