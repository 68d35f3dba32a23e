package registry

// UploadLockCount is the number of ids in the upload lock map, for tests
// that check it stays bounded.
func (s *Service) UploadLockCount() int { return s.uploadLocks.len() }

// LayerChains exposes layerChains to the lineage benchmarks, which seed
// a database with the chains pushes would have recorded.
var LayerChains = layerChains
