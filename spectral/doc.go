// Package spectral implements the frequency-domain filter of Spectral Momentum Integration
// (SMI; Huang, Chen and Zheng, 2025) as GoMLX graph functions.
package spectral
