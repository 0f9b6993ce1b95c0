# A test-only stand-in for Windows 10's icuuc.dll, which Wine 8 lacks and Qt6Core imports its converter
# functions from: ucnv_open reports every converter unavailable (U_FILE_ACCESS_ERROR), so Qt falls back to its
# own UTF codecs; nothing else is called once no converter opens, and returns 0. Assembled by packaging_wine.py
# into the Wine prefix's system32 for the build under Wine; never shipped.
        .text
        .globl  DllMain
DllMain:                        # BOOL DllMain(...): TRUE
        movl    $1, %eax
        ret

        .globl  ucnv_open
ucnv_open:                      # UConverter *ucnv_open(const char *name, UErrorCode *err)
        movl    $4, (%rdx)      # *err = U_FILE_ACCESS_ERROR
        xorl    %eax, %eax      # no converter
        ret

        .globl  unavailable
unavailable:                    # every other import: 0 (no converters are available)
        xorl    %eax, %eax
        ret
