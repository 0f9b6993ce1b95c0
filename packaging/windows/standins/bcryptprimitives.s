# A test-only stand-in for bcryptprimitives.dll, whose ProcessPrng Rust's standard library (pydantic_core,
# watchfiles) imports and Wine 8 lacks: the export forwards to advapi32's RtlGenRandom (SystemFunction036),
# see bcryptprimitives.def. Assembled by packaging_wine.py into the Wine prefix's system32; never shipped.
        .text
        .globl  DllMain
DllMain:                        # BOOL DllMain(...): TRUE
        movl    $1, %eax
        ret
