"""`l1ml deliver`: what a firmware integrator and the trigger emulation need, and nothing that has not been verified.

`gate` decides whether a run may be delivered, `vectors` writes the test vectors, `cmssw` the CMSSW emulator
package, `firmware` the firmware of a release, `package` assembles and commits a delivery, `manifest` checks and
lists delivered packages.
"""
