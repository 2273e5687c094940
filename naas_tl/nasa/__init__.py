"""NASA's chunk accelerator for hybrid (conv / shift / adder) networks (docs/nasa.md).

design: the chip (one chunk per operator type, shared GLB and DRAM) and its area; execution:
sequential and pipelined-across-images models; fit: the budget's caps on a chip; automapper:
the split of PEs and bytes between chunks and every layer's mapping; networks: the hybrid
networks of the benchmark; run: `naas-tl search --arch nasa`.
"""
