// AxialCore (atomic files, CSV, SHA-256, seeded generators, prefetcher) is part of this module's API.
@_exported import AxialCore
