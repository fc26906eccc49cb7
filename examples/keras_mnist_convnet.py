"""Keras's classic "Simple MNIST convnet" (keras.io/examples/vision/mnist_convnet), run by
ember. What differs from the Keras original is marked "ember:": the import, and the data
source — the digits bundled with ember in MNIST's 28x28 layout (plus one-pixel shifted
copies of the training images: the set is 40x smaller than MNIST), so it runs offline. With
network access or a Keras cache, `keras.datasets.mnist.load_data()` works unchanged too.

    python examples/keras_mnist_convnet.py [--epochs N]
"""
import sys

import numpy as np

import ember  # ember: for the offline data source below
from ember import keras  # ember: was `import keras`
from ember.keras import layers

# Model / data parameters
num_classes = 10
input_shape = (28, 28, 1)

# Load the data and split it between train and test sets
# ember: was keras.datasets.mnist.load_data()
(x_train, y_train), (x_test, y_test) = ember.datasets.load_digits_as_mnist(shifted_copies=True)

# Scale images to the [0, 1] range
x_train = x_train.astype("float32") / 255
x_test = x_test.astype("float32") / 255
# Make sure images have shape (28, 28, 1)
x_train = np.expand_dims(x_train, -1)
x_test = np.expand_dims(x_test, -1)
print("x_train shape:", x_train.shape)
print(x_train.shape[0], "train samples")
print(x_test.shape[0], "test samples")


# convert class vectors to binary class matrices
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential(
    [
        keras.Input(shape=input_shape),
        layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
        layers.MaxPooling2D(pool_size=(2, 2)),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ]
)

model.summary()

batch_size = 128
epochs = 15
if "--epochs" in sys.argv:  # ember: lets the tests run a shorter training
    epochs = int(sys.argv[sys.argv.index("--epochs") + 1])

model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])

model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, validation_split=0.1)

score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
