"""``vad benchmark``: reproduce the standard weakly supervised protocol of UCF-Crime, XD-Violence or ShanghaiTech.

One module per job: :mod:`.layout` finds a dataset's parts (split lists, ground truth, videos or published
features) and names every missing one; :mod:`.datasets` holds what differs per dataset (file names, labels, ground
truth reader, metric); :mod:`.anchors` the published numbers we compare with; :mod:`.commands` the equivalent
``vad`` command lines; :mod:`.results` the results table; :mod:`.runner` the protocol itself (extract, train with
validation carved from train, evaluate on test).
"""
