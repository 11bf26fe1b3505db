// Package all registers every runtime built into the program. The build
// tags no_stdhttp, no_fasthttp and no_gnet leave a runtime, and its
// dependencies, out.
package all
